package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/kraftdb/kraft/client"
	"github.com/kraftdb/kraft/server"
	"github.com/kraftdb/kraft/wire"
)

// kvClient connects the Go client to the members' client ports, found
// through the admin API.
func kvClient(f *clusterFlags) (*client.Client, func(), error) {
	a := newAdmin(f)
	st, _, err := a.status()
	if err != nil {
		a.cancel()
		return nil, nil, err
	}
	var endpoints []string
	for _, m := range st.Members {
		if m.Client != "" {
			endpoints = append(endpoints, m.Client)
		}
	}
	if len(endpoints) == 0 {
		endpoints = []string{st.Addresses.Client}
	}
	c, err := client.New(client.Config{Endpoints: endpoints, ClusterID: server.ClusterNumber(st.Cluster), RequestTimeout: f.timeout, TLS: f.tls,
		DialTimeout: min(client.DefaultDialTimeout, f.timeout)}) // a --timeout below the default dial timeout is valid
	if err != nil {
		a.cancel()
		return nil, nil, err
	}
	return c, func() { c.Close(); a.cancel() }, nil
}

func putCommand() command {
	return clusterCommand("put", "put KEY VALUE: write a key (linearizable, exactly once)", 2, func(f *clusterFlags, _ *flag.FlagSet, args []string, w io.Writer) error {
		c, done, err := kvClient(f)
		if err != nil {
			return err
		}
		defer done()
		a := newAdmin(f)
		defer a.cancel()
		res, err := c.Put(a.ctx, []byte(args[0]), []byte(args[1]))
		if err != nil {
			return err
		}
		if *f.out == "json" {
			writeJSONOut(w, res)
			return nil
		}
		fmt.Fprintln(w, "OK")
		return nil
	}, nil)
}

func getCommand() command {
	var consistency string
	return clusterCommand("get", "get KEY: read a key (--consistency linearizable|lease|stale)", 1, func(f *clusterFlags, _ *flag.FlagSet, args []string, w io.Writer) error {
		level, err := parseConsistency(consistency)
		if err != nil {
			return err
		}
		c, done, err := kvClient(f)
		if err != nil {
			return err
		}
		defer done()
		a := newAdmin(f)
		defer a.cancel()
		res, err := c.Get(a.ctx, []byte(args[0]), client.WithConsistency(level))
		if err != nil {
			return err
		}
		if *f.out == "json" {
			writeJSONOut(w, res)
			return nil
		}
		if !res.Found {
			return errors.New("key not found: " + args[0])
		}
		fmt.Fprintln(w, string(res.Value))
		return nil
	}, func(fs *flag.FlagSet) {
		fs.StringVar(&consistency, "consistency", "linearizable", "linearizable, lease or stale")
	})
}

func parseConsistency(s string) (wire.Consistency, error) {
	switch s {
	case "linearizable":
		return wire.ReadLinearizable, nil
	case "lease":
		return wire.ReadLease, nil
	case "stale":
		return wire.ReadStale, nil
	}
	return 0, usageErr{fmt.Sprintf("--consistency %q: want linearizable, lease or stale", s)}
}
