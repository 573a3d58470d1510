//go:build !linux

package tuning

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"
)

func TestNotSupported(t *testing.T) {
	if _, err := DefaultHost().Check(DefaultOptions()); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Check: %v", err)
	}
	if _, err := DefaultHost().Apply(DefaultOptions(), true); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Apply: %v", err)
	}
	var buf bytes.Buffer
	if res := StartupCheck(DefaultOptions(), slog.New(slog.NewTextHandler(&buf, nil))); !errors.Is(res.Err, ErrNotSupported) || buf.Len() == 0 {
		t.Errorf("StartupCheck: %+v %q", res, buf.String())
	}
}
