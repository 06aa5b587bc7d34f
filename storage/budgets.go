package storage

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// CreateBudget stores b, failing with ErrExists when its id is taken.
func (s *Store) CreateBudget(b *Budget) error {
	if !validID(b.BudgetID) {
		return fmt.Errorf("creating budget: invalid budget id %q", b.BudgetID)
	}
	err := s.update(func(txn *badger.Txn) error {
		found, err := exists(txn, budgetKey(b.BudgetID))
		if err != nil {
			return err
		}
		if found {
			return ErrExists
		}
		return putJSON(txn, budgetKey(b.BudgetID), b)
	})
	if err != nil {
		return fmt.Errorf("creating budget %s: %w", b.BudgetID, err)
	}
	return nil
}

// GetBudget returns the budget with the given id or ErrNotFound.
func (s *Store) GetBudget(id string) (*Budget, error) {
	var b Budget
	err := s.view(func(txn *badger.Txn) error {
		return getJSON(txn, budgetKey(id), &b)
	})
	if err != nil {
		return nil, fmt.Errorf("loading budget %s: %w", id, err)
	}
	return &b, nil
}

// ListBudgets returns budgets in creation (id) order, skipping the first
// skip and returning at most limit.
func (s *Store) ListBudgets(skip, limit int) ([]Budget, error) {
	var budgets []Budget
	err := s.view(func(txn *badger.Txn) error {
		var err error
		budgets, err = listPage[Budget](txn, []byte(prefixBudget), skip, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing budgets: %w", err)
	}
	return budgets, nil
}

// UpdateBudget applies fn to the stored budget and saves the result in one
// transaction, with the same contract as UpdateUser. Changes to BudgetID are
// ignored.
func (s *Store) UpdateBudget(id string, fn func(*Budget) error) (*Budget, error) {
	var b Budget
	err := s.update(func(txn *badger.Txn) error {
		b = Budget{} // a retry must not see fields of the previous attempt
		if err := getJSON(txn, budgetKey(id), &b); err != nil {
			return err
		}
		if err := fn(&b); err != nil {
			return &callbackError{err: err}
		}
		b.BudgetID = id
		return putJSON(txn, budgetKey(id), &b)
	})
	if ce := asCallbackError(err); ce != nil {
		return nil, ce.err
	}
	if err != nil {
		return nil, fmt.Errorf("updating budget %s: %w", id, err)
	}
	return &b, nil
}

// DeleteBudget removes the budget and takes it away from every user on it:
// their BudgetID, BudgetStartedAt and NextBudgetResetAt become nil and
// UpdatedAt becomes now. It fails with ErrNotFound when there is no such
// budget.
//
// The users are found by a scan of all users inside the first transaction,
// which also deletes the budget: a user put on the budget concurrently
// either commits first (the scan read that user, so this transaction
// conflicts and runs again) or finds the budget gone (ErrBudgetMissing).
// The users are updated in as many transactions as needed to stay within
// Badger's transaction size limit; once the first has committed no user
// can join the budget. Should a later one fail, the budget is gone while
// some users still name it, and the error says so.
func (s *Store) DeleteBudget(id string, now time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("deleting budget %s: %w", id, ErrClosed)
	}

	var userIDs []string
	first := true
	for first || len(userIDs) > 0 {
		var done int
		err := s.updateOpen(func(txn *badger.Txn) error {
			done = 0
			if first {
				found, err := exists(txn, budgetKey(id))
				if err != nil {
					return err
				}
				if !found {
					return ErrNotFound
				}
				if userIDs, err = usersOnBudget(txn, id); err != nil {
					return fmt.Errorf("finding its users: %w", err)
				}
				if err := txn.Delete(budgetKey(id)); err != nil {
					return err
				}
			}
			for _, userID := range userIDs {
				err := clearBudget(txn, userID, id, now)
				if errors.Is(err, badger.ErrTxnTooBig) && done > 0 {
					return nil // commit this batch; the next takes the rest
				}
				if err != nil {
					return fmt.Errorf("user %s: %w", userID, err)
				}
				done++
			}
			return nil
		})
		if err != nil && !first {
			return fmt.Errorf("deleting budget %s: budget removed but %d users still name it: %w",
				id, len(userIDs), err)
		}
		if err != nil {
			return fmt.Errorf("deleting budget %s: %w", id, err)
		}
		first = false
		userIDs = userIDs[done:]
	}
	if err := s.syncStore(); err != nil {
		return fmt.Errorf("deleting budget %s: %w", id, err)
	}
	return nil
}

// usersOnBudget returns the ids of users, deleted or not, whose BudgetID is
// budgetID.
func usersOnBudget(txn *badger.Txn, budgetID string) ([]string, error) {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefixUser)
	it := txn.NewIterator(opts)
	defer it.Close()

	var ids []string
	for it.Rewind(); it.Valid(); it.Next() {
		var u User
		if err := decodeItem(it.Item(), &u); err != nil {
			return nil, err
		}
		if u.BudgetID != nil && *u.BudgetID == budgetID {
			ids = append(ids, u.UserID)
		}
	}
	return ids, nil
}

// clearBudget removes budgetID from the user if the user is still on it.
// It writes at most one entry, so an ErrTxnTooBig leaves txn unchanged.
func clearBudget(txn *badger.Txn, userID, budgetID string, now time.Time) error {
	var u User
	err := getJSON(txn, userKey(userID), &u)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if u.BudgetID == nil || *u.BudgetID != budgetID {
		return nil // moved to another budget since the scan
	}
	u.BudgetID, u.BudgetStartedAt, u.NextBudgetResetAt = nil, nil, nil
	u.UpdatedAt = now
	return putJSON(txn, userKey(userID), &u)
}
