package client

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
)

// StoreLister is what a Pool needs of the manager: the stores it knows
// (*catalog.Client implements it). It may block on the network.
type StoreLister interface {
	Stores(ctx context.Context) ([]catalog.StoreInfo, error)
}

// Dialer opens a connection to the store at addr.
type Dialer func(ctx context.Context, addr string) (storage.BlockStore, error)

// Pool keeps one connection per store, dialed on first use, and maps store
// IDs to addresses through the manager's store list. Safe for concurrent
// use; Close closes every connection.
type Pool struct {
	cat  StoreLister
	dial Dialer
	log  *zap.Logger

	mu struct {
		sync.Mutex
		conns  map[string]storage.BlockStore // by address
		stores map[string]catalog.StoreInfo  // by ID, from the last refresh
		full   map[string]bool               // refused a block for room (MarkFull)
	}
}

// NewPool returns a Pool that learns stores from cat and dials with dial.
func NewPool(cat StoreLister, dial Dialer, log *zap.Logger) *Pool {
	if log == nil {
		log = zap.NewNop()
	}
	p := &Pool{cat: cat, dial: dial, log: log}
	p.mu.conns = map[string]storage.BlockStore{}
	p.mu.stores = map[string]catalog.StoreInfo{}
	p.mu.full = map[string]bool{}
	return p
}

func (p *Pool) refresh(ctx context.Context) ([]catalog.StoreInfo, error) {
	list, err := p.cat.Stores(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range list {
		p.mu.stores[s.ID] = s
	}
	return list, nil
}

func (p *Pool) conn(ctx context.Context, addr string) (storage.BlockStore, error) {
	p.mu.Lock()
	c, ok := p.mu.conns[addr]
	p.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := p.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.mu.conns[addr]; ok {
		c.Close()
		return old, nil
	}
	p.mu.conns[addr] = c
	return c, nil
}

// Targets returns the stores a Writer can place blocks on (alive, not
// draining, answering, with free space) and, in full, those alive and answering
// without room: a writer places no block there but may confirm the copies
// they hold. Stores that cannot be dialed are skipped with a warning. It
// fails when the manager cannot be asked or no alive store has room.
func (p *Pool) Targets(ctx context.Context) (targets, full []Target, err error) {
	list, err := p.refresh(ctx)
	if err != nil {
		return nil, nil, err
	}
	var skipped []string
	draining := 0
	for _, s := range list {
		// A draining store is being emptied: no new block goes there,
		// and its copies do not stand for a block's (repair moves them).
		if s.Alive && s.Draining {
			draining++
		}
		if !s.Alive || s.Draining {
			continue
		}
		c, err := p.conn(ctx, s.Addr)
		if err != nil {
			p.log.Warn("skipping a store that cannot be reached", zap.String("store", s.ID), zap.String("addr", s.Addr), zap.Error(err))
			skipped = append(skipped, fmt.Sprintf("%s (%s): %v", s.ID, s.Addr, err))
			continue
		}
		t := Target{ID: s.ID, Addr: s.Addr, Free: s.Free(), Store: c}
		p.mu.Lock()
		marked := p.mu.full[s.ID]
		p.mu.Unlock()
		if t.Free > 0 && !marked {
			targets = append(targets, t)
		} else {
			full = append(full, t)
		}
	}
	if len(full) > 0 {
		// The manager's figure for a store without room is a heartbeat
		// old: a collection or a deletion may have freed space since.
		room, still := p.Restat(ctx, full)
		targets, full = append(targets, room...), still
	}
	switch {
	case len(targets) > 0:
		return targets, full, nil
	case len(full) > 0:
		return nil, nil, &SpaceError{Stores: len(full)}
	case len(skipped) > 0:
		return nil, nil, fmt.Errorf("client: no store reachable: %v", skipped)
	case draining > 0:
		return nil, nil, fmt.Errorf("client: the %d alive stores are all draining: end a drain ('ckpt stores undrain ID') or add a store", draining)
	}
	return nil, nil, fmt.Errorf("client: the manager knows %d stores but none is alive (see 'ckpt stores')", len(list))
}

// Resolve is a StoreFunc: it returns the connection to the store with the
// given ID, refreshing the store list once when the ID is unknown.
func (p *Pool) Resolve(ctx context.Context, id string) (storage.BlockStore, string, error) {
	p.mu.Lock()
	s, ok := p.mu.stores[id]
	p.mu.Unlock()
	if !ok {
		if _, err := p.refresh(ctx); err != nil {
			return nil, "", err
		}
		p.mu.Lock()
		s, ok = p.mu.stores[id]
		p.mu.Unlock()
		if !ok {
			return nil, "", fmt.Errorf("store %s is unknown to the manager", id)
		}
	}
	c, err := p.conn(ctx, s.Addr)
	if err != nil {
		if !s.Alive {
			err = fmt.Errorf("%w (the manager last heard from it at %s)", err, s.LastSeen.Format("2006-01-02 15:04:05"))
		}
		return nil, s.Addr, err
	}
	return c, s.Addr, nil
}

// Close closes every connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, c := range p.mu.conns {
		c.Close()
		delete(p.mu.conns, a)
	}
	return nil
}
