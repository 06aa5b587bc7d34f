package storage

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestPutPriceKeepsCreatedAt(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	first := &Price{ModelKey: "openai:gpt-4o", InputPricePerMillion: 2.5, OutputPricePerMillion: 10,
		CreatedAt: testTime, UpdatedAt: testTime}
	got, err := s.PutPrice(first)
	if err != nil {
		t.Fatalf("PutPrice: %v", err)
	}
	if !reflect.DeepEqual(got, first) {
		t.Errorf("PutPrice(new) = %+v, want %+v", got, first)
	}

	later := testTime.Add(time.Hour)
	second := &Price{ModelKey: "openai:gpt-4o", InputPricePerMillion: 3, OutputPricePerMillion: 12,
		CreatedAt: later, UpdatedAt: later}
	got, err = s.PutPrice(second)
	if err != nil {
		t.Fatalf("PutPrice: %v", err)
	}
	want := *second
	want.CreatedAt = testTime
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("PutPrice(update) = %+v, want %+v", got, &want)
	}
	if stored, err := s.GetPrice("openai:gpt-4o"); err != nil || !reflect.DeepEqual(stored, &want) {
		t.Errorf("GetPrice = %+v, %v; want %+v", stored, err, &want)
	}
}

func TestSeedPrice(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)

	operator := &Price{ModelKey: "anthropic:claude", InputPricePerMillion: 1, CreatedAt: testTime}
	if _, err := s.PutPrice(operator); err != nil {
		t.Fatalf("PutPrice: %v", err)
	}

	tests := []struct {
		price    Price
		inserted bool
		wantIn   float64
	}{
		{Price{ModelKey: "anthropic:claude", InputPricePerMillion: 3}, false, 1},
		{Price{ModelKey: "openai:gpt-4o-mini", InputPricePerMillion: 0.15}, true, 0.15},
	}
	for _, tt := range tests {
		inserted, err := s.SeedPrice(&tt.price)
		if err != nil {
			t.Fatalf("SeedPrice(%s): %v", tt.price.ModelKey, err)
		}
		if inserted != tt.inserted {
			t.Errorf("SeedPrice(%s) inserted = %v, want %v", tt.price.ModelKey, inserted, tt.inserted)
		}
		p, err := s.GetPrice(tt.price.ModelKey)
		if err != nil {
			t.Fatalf("GetPrice: %v", err)
		}
		if p.InputPricePerMillion != tt.wantIn {
			t.Errorf("%s input price = %v, want %v", tt.price.ModelKey, p.InputPricePerMillion, tt.wantIn)
		}
	}
}

func TestListAndDeletePrices(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	for _, key := range []string{"openai:gpt-4o", "anthropic:claude", "openai:gpt-4o-mini"} {
		if _, err := s.PutPrice(&Price{ModelKey: key}); err != nil {
			t.Fatalf("PutPrice: %v", err)
		}
	}

	list := func(skip, limit int) []string {
		t.Helper()
		prices, err := s.ListPrices(skip, limit)
		if err != nil {
			t.Fatalf("ListPrices: %v", err)
		}
		keys := []string{}
		for _, p := range prices {
			keys = append(keys, p.ModelKey)
		}
		return keys
	}
	if got, want := list(0, 10), []string{"anthropic:claude", "openai:gpt-4o", "openai:gpt-4o-mini"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ListPrices = %v, want %v", got, want)
	}
	if got, want := list(1, 1), []string{"openai:gpt-4o"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ListPrices(1, 1) = %v, want %v", got, want)
	}

	if err := s.DeletePrice("openai:gpt-4o"); err != nil {
		t.Fatalf("DeletePrice: %v", err)
	}
	if _, err := s.GetPrice("openai:gpt-4o"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetPrice after delete: got %v, want ErrNotFound", err)
	}
	if err := s.DeletePrice("openai:gpt-4o"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting again: got %v, want ErrNotFound", err)
	}
	if got, want := list(0, 10), []string{"anthropic:claude", "openai:gpt-4o-mini"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ListPrices after delete = %v, want %v", got, want)
	}
}
