//go:build !invariants

package core

const invariantsOn = false
