package postgres

import (
	"testing"

	"github.com/llmgateway/caddy-llm-gateway/storage/storetest"
)

var _ storetest.Store = (*Store)(nil)

func TestConformance(t *testing.T) {
	testDatabaseURL(t)
	storetest.Run(t, func(t *testing.T) storetest.Store { return openTestStore(t) })
}
