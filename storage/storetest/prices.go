package storetest

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/llmgateway/caddy-llm-gateway/storage"
)

func testPrices(t *testing.T, s Store) {
	p := &storage.Price{ModelKey: "openai:gpt-4o-mini", InputPricePerMillion: 0.15, OutputPricePerMillion: 0.6, CreatedAt: T0, UpdatedAt: T0}
	stored, err := s.PutPrice(p)
	if err != nil || !reflect.DeepEqual(stored, p) {
		t.Fatalf("PutPrice = %+v (%v)", stored, err)
	}
	// Replacing keeps CreatedAt.
	stored, err = s.PutPrice(&storage.Price{ModelKey: p.ModelKey, InputPricePerMillion: 1, OutputPricePerMillion: 2, CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := &storage.Price{ModelKey: p.ModelKey, InputPricePerMillion: 1, OutputPricePerMillion: 2, CreatedAt: T0, UpdatedAt: at(time.Hour)}
	if !reflect.DeepEqual(stored, want) {
		t.Fatalf("replaced price = %+v, want %+v", stored, want)
	}
	if got, err := s.GetPrice(p.ModelKey); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("GetPrice = %+v (%v), want %+v", got, err, want)
	}
	if _, err := s.GetPrice("openai:unknown"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetPrice(unknown): %v", err)
	}
	if _, err := s.PutPrice(&storage.Price{}); err == nil {
		t.Fatal("PutPrice with an empty model key succeeded")
	}
	for _, key := range []string{"openai:gpt-4o", "anthropic:claude", "Zeta:model"} {
		if _, err := s.PutPrice(&storage.Price{ModelKey: key, CreatedAt: T0, UpdatedAt: T0}); err != nil {
			t.Fatal(err)
		}
	}
	all := []string{"Zeta:model", "anthropic:claude", "openai:gpt-4o", "openai:gpt-4o-mini"}
	for _, tc := range []struct{ skip, limit int }{{0, 10}, {1, 2}, {3, 3}} {
		list, err := s.ListPrices(tc.skip, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(list, modelKey), all[tc.skip:min(tc.skip+tc.limit, len(all))]; !slices.Equal(got, want) {
			t.Errorf("ListPrices(%d, %d) = %v, want %v", tc.skip, tc.limit, got, want)
		}
	}
	if err := s.DeletePrice(p.ModelKey); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePrice(p.ModelKey); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}
}
