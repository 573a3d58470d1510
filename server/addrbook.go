package server

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Member addresses are replicated through the log as ordinary KV entries
// under this reserved prefix, so every node (and a node restored from a
// snapshot) knows where every member listens. Clients may not write keys
// with this prefix.
const memberKeyPrefix = "\x00kraft/member/"

func memberKey(id uint64) []byte { return []byte(memberKeyPrefix + strconv.FormatUint(id, 10)) }

// isReservedKey reports whether a client key falls in Kraft's namespace.
func isReservedKey(k []byte) bool { return bytes.HasPrefix(k, []byte("\x00kraft/")) }

// Addresses is where one node listens, as it advertises itself.
type Addresses struct {
	Peer, Client, Admin string
}

func (a Addresses) encode() []byte {
	return []byte("peer=" + a.Peer + ";client=" + a.Client + ";admin=" + a.Admin)
}

func decodeAddresses(b []byte) (Addresses, error) {
	var a Addresses
	for _, part := range strings.Split(string(b), ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return a, fmt.Errorf("kraft/server: bad member record %q", b)
		}
		switch k {
		case "peer":
			a.Peer = v
		case "client":
			a.Client = v
		case "admin":
			a.Admin = v
		}
	}
	return a, nil
}

// merge fills a's empty fields from b.
func (a Addresses) merge(b Addresses) Addresses {
	if a.Peer == "" {
		a.Peer = b.Peer
	}
	if a.Client == "" {
		a.Client = b.Client
	}
	if a.Admin == "" {
		a.Admin = b.Admin
	}
	return a
}

// addressBook combines what this node knows about members' addresses:
// what they told it in handshakes (freshest), what the log says, and the
// static --peers (peer addresses only).
type addressBook struct {
	mu      sync.Mutex
	learned map[uint64]Addresses
	static  map[uint64]string
	// replicated reads a member's record from the local state machine.
	replicated func(id uint64) (Addresses, bool)
}

func newAddressBook(static map[uint64]string, replicated func(uint64) (Addresses, bool)) *addressBook {
	return &addressBook{learned: map[uint64]Addresses{}, static: static, replicated: replicated}
}

func (b *addressBook) learn(id uint64, a Addresses) {
	b.mu.Lock()
	b.learned[id] = a
	b.mu.Unlock()
}

// get returns the best known addresses of id.
func (b *addressBook) get(id uint64) Addresses {
	b.mu.Lock()
	a := b.learned[id]
	static := b.static[id]
	b.mu.Unlock()
	if r, ok := b.replicated(id); ok {
		a = a.merge(r)
	}
	return a.merge(Addresses{Peer: static})
}

// learnedDiffers returns the learned addresses of id when they are complete
// and differ from the replicated record: what the leader should publish.
func (b *addressBook) learnedDiffers(id uint64) (Addresses, bool) {
	b.mu.Lock()
	a, ok := b.learned[id]
	b.mu.Unlock()
	if !ok || a.Peer == "" || a.Client == "" {
		return a, false
	}
	r, _ := b.replicated(id)
	return a, r != a
}
