//go:build invariants

package sm

// invariants turns on costly self-checks: after every insert and delete
// the key table's probe run around the slot is checked (every entry
// reachable from its home, every stored hash its key's), and the whole
// table after growth.
const invariants = true
