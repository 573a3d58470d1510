// Command kraftd runs one Kraft node: Raft peers on --raft-port (7001),
// clients on --client-port (7002), admin HTTP (metrics, health, admin API)
// on --admin-port (7003). Every flag has a KRAFT_* environment variable and
// may come from --env-file; `kraftd --help` lists them.
//
// Signals: SIGTERM/SIGINT stop gracefully (a leader hands leadership to the
// most up-to-date voter first); SIGHUP reloads the reloadable settings (log
// level) from the same flags, environment and env file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kraftdb/kraft/server"
	"github.com/kraftdb/kraft/tuning"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stderr))
}

func run(args, environ []string, stderr io.Writer) int {
	for _, a := range args {
		if a == "--version" || a == "-version" {
			fmt.Fprintln(os.Stdout, "kraftd", version)
			return 0
		}
	}
	cfg, err := server.LoadConfig(args, environ, stderr)
	if errors.Is(err, server.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "kraftd: invalid configuration:\n%v\n", err)
		return 2
	}
	level := new(slog.LevelVar)
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(h)
	slog.SetDefault(log)

	walDir := cfg.WALDir
	if walDir == "" {
		walDir = cfg.DataDir
	}
	tuning.StartupCheck(tuning.Options{DataDir: cfg.DataDir, WALDir: walDir, SnapshotDir: cfg.SnapshotDir}, log)

	srv, err := server.New(cfg, log, level)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		select {
		case <-srv.Done():
			log.Error("node stopped", "error", fmt.Sprint(srv.Err()))
			srv.Close()
			return 1
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				newCfg, err := server.LoadConfig(args, os.Environ(), io.Discard)
				if err != nil {
					log.Error("reload refused: invalid configuration; keeping the running one", "error", err.Error())
					continue
				}
				srv.Reload(newCfg)
				continue
			}
			log.Info("stopping", "signal", sig.String())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil {
				log.Error("shutdown", "error", err.Error())
				return 1
			}
			return 0
		}
	}
}
