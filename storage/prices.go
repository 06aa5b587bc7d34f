package storage

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// PutPrice inserts or replaces the price of p.ModelKey. When a price is
// already stored its CreatedAt is kept. It returns the value now stored.
func (s *Store) PutPrice(p *Price) (*Price, error) {
	if p.ModelKey == "" {
		return nil, errors.New("storing price: empty model key")
	}
	var stored Price
	err := s.update(func(txn *badger.Txn) error {
		stored = *p
		var old Price
		err := getJSON(txn, priceKey(p.ModelKey), &old)
		switch {
		case err == nil:
			stored.CreatedAt = old.CreatedAt
		case !errors.Is(err, ErrNotFound):
			return err
		}
		return putJSON(txn, priceKey(p.ModelKey), &stored)
	})
	if err != nil {
		return nil, fmt.Errorf("storing price %s: %w", p.ModelKey, err)
	}
	return &stored, nil
}

// SeedPrice stores p only when no price exists for p.ModelKey, so that
// built-in defaults never overwrite an operator's price. It reports whether
// it stored p.
func (s *Store) SeedPrice(p *Price) (bool, error) {
	if p.ModelKey == "" {
		return false, errors.New("seeding price: empty model key")
	}
	var inserted bool
	err := s.update(func(txn *badger.Txn) error {
		inserted = false
		found, err := exists(txn, priceKey(p.ModelKey))
		if err != nil || found {
			return err
		}
		inserted = true
		return putJSON(txn, priceKey(p.ModelKey), p)
	})
	if err != nil {
		return false, fmt.Errorf("seeding price %s: %w", p.ModelKey, err)
	}
	return inserted, nil
}

// GetPrice returns the price of modelKey ("provider:model") or ErrNotFound.
func (s *Store) GetPrice(modelKey string) (*Price, error) {
	var p Price
	err := s.view(func(txn *badger.Txn) error {
		return getJSON(txn, priceKey(modelKey), &p)
	})
	if err != nil {
		return nil, fmt.Errorf("loading price %s: %w", modelKey, err)
	}
	return &p, nil
}

// ListPrices returns prices in model key order, skipping the first skip and
// returning at most limit.
func (s *Store) ListPrices(skip, limit int) ([]Price, error) {
	var prices []Price
	err := s.view(func(txn *badger.Txn) error {
		var err error
		prices, err = listPage[Price](txn, []byte(prefixPrice), skip, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing prices: %w", err)
	}
	return prices, nil
}

// DeletePrice removes the price of modelKey, failing with ErrNotFound when
// there is none.
func (s *Store) DeletePrice(modelKey string) error {
	err := s.update(func(txn *badger.Txn) error {
		found, err := exists(txn, priceKey(modelKey))
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		return txn.Delete(priceKey(modelKey))
	})
	if err != nil {
		return fmt.Errorf("deleting price %s: %w", modelKey, err)
	}
	return nil
}
