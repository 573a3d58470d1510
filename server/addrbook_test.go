package server

import "testing"

func TestAddressBookPrefersHandshakesThenLogThenFlags(t *testing.T) {
	replicated := map[uint64]Addresses{2: {Peer: "log:1", Client: "log:2", Admin: "log:3"}}
	b := newAddressBook(map[uint64]string{2: "flag:1", 3: "flag3:1"}, func(id uint64) (Addresses, bool) {
		a, ok := replicated[id]
		return a, ok
	})
	if a := b.get(2); a != replicated[2] {
		t.Fatalf("log record: %+v", a)
	}
	if a := b.get(3); a.Peer != "flag3:1" || a.Client != "" {
		t.Fatalf("static only: %+v", a)
	}
	b.learn(2, Addresses{Peer: "new:1", Client: "new:2"})
	if a := b.get(2); a.Peer != "new:1" || a.Client != "new:2" || a.Admin != "log:3" {
		t.Fatalf("learned over log: %+v", a)
	}
	if a, differs := b.learnedDiffers(2); !differs || a.Peer != "new:1" {
		t.Fatalf("learnedDiffers = %+v %v", a, differs)
	}
	replicated[2] = Addresses{Peer: "new:1", Client: "new:2"}
	if _, differs := b.learnedDiffers(2); differs {
		t.Fatal("published record still reported as differing")
	}
	if _, differs := b.learnedDiffers(3); differs {
		t.Fatal("a node with no handshake has nothing to publish")
	}
	a := Addresses{Peer: "p:1", Client: "c:2", Admin: "a:3"}
	if got, err := decodeAddresses(a.encode()); err != nil || got != a {
		t.Fatalf("record round trip: %+v %v", got, err)
	}
	if _, err := decodeAddresses([]byte("garbage")); err == nil {
		t.Fatal("garbage record decoded")
	}
	if !isReservedKey(memberKey(1)) || isReservedKey([]byte("user:1")) {
		t.Fatal("reserved key prefix")
	}
}
