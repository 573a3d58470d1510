package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/kraftdb/kraft/client"
)

// Example shows the calls and how errors are classified. It needs a
// running cluster, so it has no Output line and is only compiled.
func Example() {
	c, err := client.New(client.Config{
		Endpoints: []string{"10.0.0.1:7002", "10.0.0.2:7002", "10.0.0.3:7002"},
		ClusterID: 1,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	w, err := c.Put(ctx, []byte("greeting"), []byte("hello"))
	switch {
	case errors.Is(err, client.ErrUnknownOutcome):
		// The put may or may not have happened: read it back.
	case errors.Is(err, client.ErrNoQuorum):
		log.Printf("cluster has lost its quorum: %v", err)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("written at index", w.Index, "term", w.Term)
	}

	r, err := c.Get(ctx, []byte("greeting"), client.WithConsistency(client.Linearizable))
	if err != nil {
		log.Fatal(err)
	}
	if r.Found {
		fmt.Printf("greeting = %s\n", r.Value)
	}

	swap, err := c.CAS(ctx, []byte("greeting"), []byte("hello"), []byte("bonjour"))
	if err != nil {
		log.Fatal(err)
	}
	if !swap.Swapped {
		fmt.Printf("someone else wrote %q first\n", swap.Current)
	}

	if _, err := c.Delete(ctx, []byte("greeting")); err != nil {
		log.Fatal(err)
	}
}

// ExampleLoadTLS connects over TLS to nodes whose certificates the CA in
// ca.crt signed (docs/security.md shows how to make them), presenting a
// client certificate for nodes run with --client-ca. Only compiled.
func ExampleLoadTLS() {
	tlsConf, err := client.LoadTLS("/etc/kraft/tls/ca.crt", "/etc/kraft/tls/app.crt", "/etc/kraft/tls/app.key")
	if err != nil {
		log.Fatal(err) // names the file at fault
	}
	c, err := client.New(client.Config{Endpoints: []string{"10.0.0.1:7002"}, ClusterID: 1, TLS: tlsConf})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(context.Background(), []byte("greeting")); errors.Is(err, client.ErrTLS) {
		log.Fatal(err) // e.g. "endpoint 10.0.0.1:7002 does not speak TLS": a configuration error
	}
}
