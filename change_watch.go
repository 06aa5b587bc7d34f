package llmgateway

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/llmgateway/caddy-llm-gateway/storage/postgres"
)

// changeWatch tells whether an instance's change notifications still
// arrive. A listening connection can look alive and deliver nothing (a
// network path that drops packets without resetting the connection, until
// TCP keepalive notices), so each check sends a heartbeat notification of
// its own through the database: PostgreSQL delivers notifications in
// commit order, so a heartbeat that came back means every change committed
// before it was sent came back too. One that has not come back by the next
// check means changes may have been lost.
type changeWatch struct {
	prefix   string        // this instance's tokens: prefix + sequence number
	sent     atomic.Uint64 // the last heartbeat sent (0: none yet)
	received atomic.Uint64 // the highest heartbeat that came back
}

func newChangeWatch(instance string) *changeWatch {
	return &changeWatch{prefix: instance + "#"}
}

// next numbers the next heartbeat and returns its token.
func (w *changeWatch) next() string {
	return w.prefix + strconv.FormatUint(w.sent.Add(1), 10)
}

// heard records a heartbeat token that came back; other instances'
// tokens are ignored.
func (w *changeWatch) heard(token string) {
	rest, ok := strings.CutPrefix(token, w.prefix)
	if !ok {
		return
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return
	}
	for {
		cur := w.received.Load()
		if n <= cur || w.received.CompareAndSwap(cur, n) {
			return
		}
	}
}

// missed reports whether the last heartbeat sent has not come back.
func (w *changeWatch) missed() bool {
	return w.received.Load() < w.sent.Load()
}

// forgetChanged drops from the caches what change c names: the key of
// each of its hashes, the user, the budget or the price. Each cache holds
// one kind of row, by its own id, so nothing else can be stale. A change
// that names nothing (the listener reconnected: notifications may have
// been lost) or that cannot be read drops everything.
func forgetChanged(cs caches, c postgres.Change) {
	switch c.Table {
	case "api_keys":
		for _, h := range c.KeyHashes {
			var hash [sha256.Size]byte
			if n, err := hex.Decode(hash[:], []byte(h)); err != nil || n != sha256.Size {
				cs.invalidate()
				return
			}
			cs.keys.forget(hash)
		}
		if len(c.KeyHashes) == 0 {
			cs.keys.invalidate()
		}
	case "users":
		cs.users.forget(c.ID)
	case "budgets":
		cs.budgets.forget(c.ID)
	case "model_pricing":
		cs.prices.forget(c.ID)
	default:
		cs.invalidate()
	}
}
