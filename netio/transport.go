package netio

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/kraftdb/kraft/wire"
	"github.com/panjf2000/gnet/v2"
)

// Transport serves a node's peer and client ports on gnet event loops and
// keeps one outbound connection to every known peer.
type Transport struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	stats   Stats

	srv      *server
	eng      gnet.Engine
	gnetUp   bool // eng serves the plaintext ports
	serveErr chan error
	dialer   *gnet.Client

	sweepDone chan struct{}
	sweepWG   sync.WaitGroup

	cork corker // Cork/Uncork of the peer outboxes

	mu      sync.RWMutex
	peers   map[uint64]*peer
	started bool // dial loops run; before Start, SetPeer only records
	closed  bool
	wg      sync.WaitGroup // peer dial loops
}

// New validates cfg and returns a transport that is not yet listening.
func New(cfg Config, h Handler) (*Transport, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("kraft/netio: nil Handler")
	}
	t := &Transport{cfg: cfg, handler: h, log: cfg.Logger.With("component", "netio", "node", cfg.NodeID), peers: make(map[uint64]*peer)}
	var err error
	t.srv = &server{t: t, booted: make(chan gnet.Engine, 1), inflightText: inflightText(cfg.MaxInflightRequestsPerConn)}
	t.srv.now.Store(time.Now().UnixNano())
	if t.srv.peerPort, err = port(cfg.PeerAddr); err != nil {
		return nil, err
	}
	if cfg.ClientAddr != "" {
		if t.srv.clientPort, err = port(cfg.ClientAddr); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func port(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("kraft/netio: address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("kraft/netio: address %q: port must be 1-65535 (an explicit port: the listener is told apart by it)", addr)
	}
	return n, nil
}

// Start binds the listeners and starts dialling the configured peers. It
// returns once the listeners accept connections, or with the bind error.
// Plaintext ports are served by gnet, TLS ports by crypto/tls.
func (t *Transport) Start() error {
	logger := gnetLogger{t.log}
	var addrs []string
	if t.cfg.PeerTLS == nil {
		addrs = append(addrs, "tcp://"+t.cfg.PeerAddr)
	}
	if t.cfg.ClientAddr != "" && t.cfg.ClientTLS == nil {
		addrs = append(addrs, "tcp://"+t.cfg.ClientAddr)
	}
	t.serveErr = make(chan error, 1)
	if len(addrs) > 0 {
		go func() {
			t.serveErr <- gnet.Rotate(t.srv, addrs,
				gnet.WithMulticore(true), gnet.WithNumEventLoop(t.cfg.ServerLoops),
				gnet.WithReuseAddr(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay),
				gnet.WithTicker(true), gnet.WithLogger(logger))
		}()
		select {
		case t.eng = <-t.srv.booted:
			t.gnetUp = true
		case err := <-t.serveErr:
			return fmt.Errorf("kraft/netio: listening on %v: %w", addrs, err)
		}
	}
	err := t.startTLS()
	if err == nil && t.cfg.PeerTLS == nil {
		t.dialer, err = gnet.NewClient(&dialerHandler{t: t},
			gnet.WithMulticore(true), gnet.WithNumEventLoop(t.cfg.DialerLoops),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithLogger(logger))
		if err == nil {
			err = t.dialer.Start()
		}
		if err != nil {
			err = fmt.Errorf("kraft/netio: starting the dialer loops: %w", err)
		}
	}
	if err != nil {
		t.srv.tls.stop()
		if t.gnetUp {
			t.eng.Stop(context.Background())
			<-t.serveErr
		}
		return err
	}
	t.sweepDone = make(chan struct{})
	t.sweepWG.Add(1)
	go t.sweep()
	t.log.Info("listening", "peer", t.cfg.PeerAddr, "client", t.cfg.ClientAddr, "server_loops", t.cfg.ServerLoops, "dialer_loops", t.cfg.DialerLoops,
		"peer_tls", t.cfg.PeerTLS != nil, "client_tls", t.cfg.ClientTLS != nil)
	t.mu.Lock()
	t.started = true
	for _, p := range t.peers {
		t.wg.Add(1)
		go p.run()
	}
	t.mu.Unlock()
	for id, addr := range t.cfg.Peers {
		t.SetPeer(id, addr)
	}
	return nil
}

// Send queues m for m.To. It never blocks: it returns ErrNotConnected while
// the peer is unreachable and ErrBusy when the peer's queue is full; Raft's
// retransmission covers both. Encoding happens before Send returns, so m
// and the slices it refers to may be reused at once.
func (t *Transport) Send(m *wire.Message) error {
	t.mu.RLock()
	p := t.peers[m.To]
	t.mu.RUnlock()
	if p == nil {
		t.stats.SendsUnconnected.Add(1)
		return fmt.Errorf("%w: node %d is not a known peer", ErrNotConnected, m.To)
	}
	ob := p.out.Load()
	if ob == nil {
		t.stats.SendsUnconnected.Add(1)
		return ErrNotConnected
	}
	return ob.sendMessage(m)
}

// Cork holds back the messages that Send queues to peers until Uncork, so
// that the messages to one peer between the two leave in one write (core.Node
// corks the Sends of each turn). Sends from any goroutine are held; the
// caller must call Uncork soon.
func (t *Transport) Cork() {
	t.cork.mu.Lock()
	t.cork.on = true
	t.cork.mu.Unlock()
}

// Uncork writes what Send queued since Cork: one write per peer, from the
// calling goroutine when the connection is idle.
func (t *Transport) Uncork() {
	t.cork.mu.Lock()
	t.cork.on = false
	dirty := t.cork.dirty
	t.cork.dirty = nil
	t.cork.mu.Unlock()
	for i, o := range dirty {
		o.uncork()
		dirty[i] = nil
	}
	t.cork.mu.Lock()
	if t.cork.dirty == nil {
		t.cork.dirty = dirty[:0] // reuse the list
	}
	t.cork.mu.Unlock()
}

// SetPeer adds a peer or changes its address; the transport (re)connects.
// Before Start it only records the peer.
func (t *Transport) SetPeer(id uint64, addr string) {
	if id == t.cfg.NodeID {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if p := t.peers[id]; p != nil {
		if p.addr == addr {
			return
		}
		p.stop()
	}
	p := newPeer(t, id, addr)
	t.peers[id] = p
	if t.started {
		t.wg.Add(1)
		go p.run()
	}
}

// RemovePeer closes the connection to a peer and forgets it.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Connected reports whether an outbound connection to id is established.
func (t *Transport) Connected(id uint64) bool {
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	return p != nil && p.out.Load() != nil
}

// hello is this node's handshake for the given role.
func (t *Transport) hello(role wire.Role) wire.Hello {
	return wire.Hello{Role: role, ClusterID: t.cfg.ClusterID, NodeID: t.cfg.NodeID, Capabilities: t.capabilities(role),
		PeerAddr: t.cfg.AdvertisePeer, ClientAddr: t.cfg.AdvertiseClient, AdminAddr: t.cfg.AdvertiseAdmin}
}

// QueuedBytes is what the transport holds for sending, over all
// connections, and how many connections there are (peer and client).
func (t *Transport) QueuedBytes() (bytes int64, conns int) {
	t.mu.RLock()
	for _, p := range t.peers {
		if ob := p.out.Load(); ob != nil {
			bytes += ob.queued()
			conns++
		}
	}
	t.mu.RUnlock()
	t.srv.clients.Range(func(_, v any) bool {
		bytes += v.(*ClientConn).out.queued()
		conns++
		return true
	})
	return bytes, conns
}

// Probe dials a peer address and exchanges handshakes, to learn which node
// listens there and where it can be reached; then it hangs up.
func (t *Transport) Probe(addr string) (wire.Hello, error) {
	conn, err := t.dialPeer(context.Background(), addr, 0)
	if err != nil {
		return wire.Hello{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	return handshakeDialer(conn, t.hello(wire.RolePeer), 0)
}

// Stats returns the transport's counters.
func (t *Transport) Stats() *Stats { return &t.stats }

// Close stops dialling, closes every connection and the listeners.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for id, p := range t.peers {
		p.stop()
		delete(t.peers, id)
	}
	t.mu.Unlock()
	t.wg.Wait()
	if t.sweepDone != nil {
		close(t.sweepDone)
		t.sweepWG.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if t.dialer != nil {
		err = t.dialer.Stop()
	}
	t.srv.tls.stop()
	if t.gnetUp {
		if e := t.eng.Stop(ctx); e != nil && err == nil {
			err = e
		}
		if e := <-t.serveErr; e != nil && err == nil {
			err = e
		}
	}
	return err
}

// startTLS binds the TLS ports.
func (t *Transport) startTLS() error {
	if t.cfg.PeerTLS != nil {
		if err := t.srv.listenTLS(t.cfg.PeerAddr, wire.RolePeer, t.cfg.PeerTLS.ServerConfig(true)); err != nil {
			return fmt.Errorf("kraft/netio: listening with TLS on %s: %w", t.cfg.PeerAddr, err)
		}
	}
	if t.cfg.ClientTLS != nil && t.cfg.ClientAddr != "" {
		cfg := t.cfg.ClientTLS.ServerConfig(t.cfg.ClientTLS.HasCA())
		if err := t.srv.listenTLS(t.cfg.ClientAddr, wire.RoleClient, cfg); err != nil {
			return fmt.Errorf("kraft/netio: listening with TLS on %s: %w", t.cfg.ClientAddr, err)
		}
	}
	return nil
}

// sweep keeps the server's coarse clock and closes client connections that
// have been idle for IdleTimeout: no frame in, no request unanswered.
// Peers are not swept; their heartbeats keep them busy.
func (t *Transport) sweep() {
	defer t.sweepWG.Done()
	idle := t.cfg.IdleTimeout
	tick := time.NewTicker(min(max(idle/8, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	text := "idle for " + idle.String() + " without a request: closing the connection"
	for {
		select {
		case <-t.sweepDone:
			return
		case now := <-tick.C:
			t.srv.now.Store(now.UnixNano())
			cutoff := now.Add(-idle).UnixNano()
			t.srv.clients.Range(func(_, v any) bool {
				c := v.(*ClientConn)
				if c.lastIn.Load() < cutoff && c.inflight.Load() == 0 && c.closed.CompareAndSwap(false, true) {
					t.stats.IdleTimeouts.Add(1)
					t.log.Info("closing idle client connection", "remote", c.remote, "idle_timeout", idle)
					c.conn.closeWith(wire.AppendErrorFrame(nil, wire.ErrCodeIdleTimeout, text))
				}
				return true
			})
		}
	}
}

// gnetLogger routes gnet's own logging into slog; its chatter is debug.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...), "from", "gnet") }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...), "from", "gnet") }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...), "from", "gnet") }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "from", "gnet") }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "from", "gnet") }
