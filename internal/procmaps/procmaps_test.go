package procmaps

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestResidentIn(t *testing.T) {
	smaps := []byte(`7f0000000000-7f0000400000 r--s 00000000 fd:01 42 /data/wal/00000000000000000001.seg
Size:               4096 kB
Rss:                 128 kB
Pss:                 128 kB
7f0000400000-7f0000800000 r--s 00000000 fd:01 43 /data/wal/00000000000000000002.seg
Size:               4096 kB
Rss:                   8 kB
7f0000800000-7f0000c00000 r--s 00000000 fd:01 44 /data/other/x.seg
Size:               4096 kB
Rss:                1000 kB
7f0000c00000-7f0000c01000 rw-p 00000000 00:00 0
Rss:                   4 kB
`)
	got, err := residentIn(smaps, "/data/wal/")
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(136 << 10); got != want {
		t.Fatalf("resident %d bytes, want %d", got, want)
	}
	if _, err := residentIn([]byte("7f0000000000-7f0000400000 r--s 00000000 fd:01 42 /data/wal/a\nRss: lots\n"), "/data/wal/"); err == nil {
		t.Fatal("a malformed Rss line was accepted")
	}
}

// TestResidentOfARealMapping maps a file, touches part of it and sees that
// part, then nothing after MADV_DONTNEED.
func TestResidentOfARealMapping(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, 1<<20, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	sum := 0
	for i := 0; i < 256<<10; i += 4096 {
		sum += int(m[i])
	}
	if sum != 0 {
		t.Fatal("a file of zeros read back non-zero")
	}
	got, err := Resident(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got < 256<<10 || got > 1<<20 {
		t.Fatalf("resident %d bytes after touching 256 KiB of 1 MiB", got)
	}
	if err := unix.Madvise(m, unix.MADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if got, err = Resident(dir); err != nil || got != 0 {
		t.Fatalf("resident %d bytes (%v) after MADV_DONTNEED", got, err)
	}
}
