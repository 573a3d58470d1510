package client

import (
	"context"
	"time"
)

// connFor returns the connection to use, dialing one if needed. Only one
// dial runs at a time; concurrent callers wait for it and share its result.
// deadline (the call's) is asked for only when connFor dials or waits.
func (c *Client) connFor(ctx context.Context, deadline func() time.Time) (*conn, error) {
	c.mu.Lock()
	if cn := c.cur; cn != nil && !c.isClosed && cn.alive() {
		c.mu.Unlock()
		return cn, nil
	}
	c.mu.Unlock()
	// Only a call that dials or waits for a dial pays for a context.
	ctx, cancel := context.WithDeadline(ctx, deadline())
	defer cancel()
	for {
		c.mu.Lock()
		if c.isClosed {
			c.mu.Unlock()
			return nil, errConnClosed
		}
		if cn := c.cur; cn != nil {
			if cn.alive() {
				c.mu.Unlock()
				return cn, nil
			}
			c.lostLocked(cn)
		}
		if d := c.dialing; d != nil {
			c.mu.Unlock()
			select {
			case <-d.done:
				if d.err != nil && !d.dialerCancel {
					return nil, d.err
				}
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-c.closed:
				return nil, errConnClosed
			}
		}
		d := &dialing{done: make(chan struct{})}
		c.dialing = d
		addr := c.target()
		c.mu.Unlock()

		cn, err := c.dial(ctx, addr)

		c.mu.Lock()
		c.dialing = nil
		switch {
		case c.isClosed:
			if err == nil {
				_ = cn.nc.Close()
			}
			cn, err = nil, errConnClosed
		case err == nil:
			c.cur = cn
			c.wg.Add(2)
			go func() { defer c.wg.Done(); cn.readLoop() }()
			go func() { defer c.wg.Done(); cn.writeLoop() }()
		case ctx.Err() != nil:
			d.dialerCancel = true
		default:
			c.unreachableLocked(addr)
		}
		d.err = err
		close(d.done)
		c.mu.Unlock()
		return cn, err
	}
}

// dial connects to addr; Close interrupts it.
func (c *Client) dial(ctx context.Context, addr string) (*conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()
	cn, err := dialConn(ctx, &c.cfg, addr)
	if cn != nil {
		cn.stats = &c.stats
	}
	return cn, err
}

// target is the address to dial: the known leader, else the next endpoint.
func (c *Client) target() string {
	if c.leader != "" {
		return c.leader
	}
	return c.cfg.Endpoints[c.next]
}

// redirect handles a "not leader" answer that came on cn. With a leader
// address that is not cn's, the client follows it at once (it returns
// true); otherwise it forgets the leader and moves to the next endpoint.
// Either way cn is dropped, once.
func (c *Client) redirect(cn *conn, leaderAddr string) (now bool) {
	c.mu.Lock()
	if leaderAddr != "" && leaderAddr != cn.addr {
		c.leader, now = leaderAddr, true
	} else {
		if c.leader == cn.addr {
			c.leader = ""
		}
		c.advancePast(cn.addr)
	}
	drop := c.cur == cn
	if drop {
		c.cur = nil
	}
	c.mu.Unlock()
	if drop {
		cn.fail(errConnSwitched)
	}
	return now
}

// connLost handles a connection that died under a call.
func (c *Client) connLost(cn *conn) {
	c.mu.Lock()
	c.lostLocked(cn)
	c.mu.Unlock()
}

// lostLocked forgets cn if it is current (once per connection, however
// many calls notice) and moves on from its node. c.mu must be held.
func (c *Client) lostLocked(cn *conn) {
	if c.cur != cn {
		return
	}
	c.cur = nil
	c.unreachableLocked(cn.addr)
}

// unreachableLocked moves on from addr. c.mu must be held.
func (c *Client) unreachableLocked(addr string) {
	if c.leader == addr {
		c.leader = ""
	}
	c.advancePast(addr)
}

// advancePast moves the endpoint cursor off addr when it points there.
func (c *Client) advancePast(addr string) {
	if c.cfg.Endpoints[c.next] == addr {
		c.next = (c.next + 1) % len(c.cfg.Endpoints)
	}
}
