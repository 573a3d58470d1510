package server

import (
	"errors"
	"fmt"

	"github.com/kraftdb/kraft/netio"
)

// tlsSources are the certificate sources of the three ports (nil: plaintext).
type tlsSources struct {
	peer, client, admin *netio.TLSSource
}

// loadTLS reads the certificate, key and CA files of every port that has
// them; errors name the flags.
func loadTLS(cfg *Config) (tlsSources, error) {
	var ts tlsSources
	var errs []error
	load := func(port, cert, key, ca string) *netio.TLSSource {
		if cert == "" {
			return nil
		}
		src, err := netio.NewTLSSource(cert, key, ca)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s-cert/--%s-key/--%s-ca: %w", port, port, port, err))
			return nil
		}
		return src
	}
	ts.peer = load("peer", cfg.PeerCert, cfg.PeerKey, cfg.PeerCA)
	ts.client = load("client", cfg.ClientCert, cfg.ClientKey, cfg.ClientCA)
	ts.admin = load("admin", cfg.AdminCert, cfg.AdminKey, cfg.AdminCA)
	if ts.peer != nil {
		if ids := netio.NodeIDs(ts.peer.Certificate()); !containsID(ids, cfg.NodeID) {
			errs = append(errs, fmt.Errorf("--peer-cert %s names nodes %v, not this node %d (URI SAN %s or DNS SAN kraft-node%d...)",
				cfg.PeerCert, ids, cfg.NodeID, netio.NodeURI(cfg.NodeID), cfg.NodeID))
		}
	}
	return ts, errors.Join(errs...)
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// reload re-reads every configured certificate source (SIGHUP); a source
// that fails keeps its old material, and the error names its files.
func (ts tlsSources) reload() error {
	var errs []error
	for _, src := range []*netio.TLSSource{ts.peer, ts.client, ts.admin} {
		if src != nil {
			if err := src.Reload(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
