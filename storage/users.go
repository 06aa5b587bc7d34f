package storage

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// CreateUser stores u. It fails with ErrExists when an active user has the
// same id. A soft-deleted user with that id is replaced by u, which revives
// it; the caller passes fresh fields (zero spend, nil DeletedAt). The
// caller also sets CreatedAt and UpdatedAt. A user with a BudgetID is
// stored only if that budget exists in the same transaction, else
// ErrBudgetMissing, and the budget is rewritten with it so that a
// concurrent DeleteBudget conflicts and finds the new user.
func (s *Store) CreateUser(u *User) error {
	if !validID(u.UserID) {
		return fmt.Errorf("creating user: invalid user id %q", u.UserID)
	}
	err := s.update(func(txn *badger.Txn) error {
		var old User
		err := getJSON(txn, userKey(u.UserID), &old)
		switch {
		case err == nil && !old.Deleted():
			return ErrExists
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		if err := checkBudget(txn, u.BudgetID); err != nil {
			return err
		}
		if u.BudgetID != nil {
			// A DeleteBudget scanning users cannot see this new user's key;
			// rewriting the budget makes it conflict and scan again.
			if err := touch(txn, budgetKey(*u.BudgetID)); err != nil {
				return err
			}
		}
		if err := txn.Set(activeUserKey(u.UserID), []byte{}); err != nil {
			return err
		}
		return putJSON(txn, userKey(u.UserID), u)
	})
	if err != nil {
		return fmt.Errorf("creating user %s: %w", u.UserID, err)
	}
	return nil
}

// GetUser returns the user with the given id, soft-deleted or not (check
// User.Deleted). It fails with ErrNotFound when there is none.
func (s *Store) GetUser(id string) (*User, error) {
	var u User
	err := s.view(func(txn *badger.Txn) error {
		return getJSON(txn, userKey(id), &u)
	})
	if err != nil {
		return nil, fmt.Errorf("loading user %s: %w", id, err)
	}
	return &u, nil
}

// ListUsers returns active users in ascending byte order of their ids,
// skipping the first skip of them and returning at most limit. It walks
// the index of active users, which holds keys only: skipped users cost a
// key each, and only the users returned are read and decoded.
func (s *Store) ListUsers(skip, limit int) ([]User, error) {
	users, _, err := s.listUsers(skip, limit)
	return users, err
}

// listUsers implements ListUsers and also reports how many user records
// it decoded.
func (s *Store) listUsers(skip, limit int) ([]User, int, error) {
	users := []User{}
	decoded := 0
	err := s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefixUserActive)
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()

		for it.Rewind(); it.Valid() && len(users) < limit; it.Next() {
			if skip > 0 {
				skip--
				continue
			}
			id := string(it.Item().Key()[len(prefixUserActive):])
			var u User
			decoded++
			if err := getJSON(txn, userKey(id), &u); err != nil {
				return fmt.Errorf("user %s: %w", id, err)
			}
			users = append(users, u)
		}
		return nil
	})
	if err != nil {
		return nil, decoded, fmt.Errorf("listing users: %w", err)
	}
	return users, decoded, nil
}

// UpdateUser applies fn to the stored user and saves the result, all in one
// transaction. fn also sees soft-deleted users and decides what to do with
// them. fn may run more than once when the transaction conflicts with a
// concurrent write, so it must not have side effects. An error from fn
// aborts the update and is returned as is. Changes to UserID are ignored.
// UpdateUser fails with ErrNotFound when the user does not exist, and with
// ErrBudgetMissing when fn puts the user on a budget that does not exist:
// the budget is read in the same transaction, so a DeleteBudget that
// commits first makes the update retry and fail, and one that commits
// later sees the user on the budget (it reads every user) and clears it.
func (s *Store) UpdateUser(id string, fn func(*User) error) (*User, error) {
	var u User
	err := s.update(func(txn *badger.Txn) error {
		u = User{} // a retry must not see fields of the previous attempt
		if err := getJSON(txn, userKey(id), &u); err != nil {
			return err
		}
		oldBudget, wasDeleted := u.BudgetID, u.Deleted()
		if err := fn(&u); err != nil {
			return &callbackError{err: err}
		}
		u.UserID = id
		if u.BudgetID != nil && (oldBudget == nil || *oldBudget != *u.BudgetID) {
			if err := checkBudget(txn, u.BudgetID); err != nil {
				return err
			}
		}
		if u.Deleted() != wasDeleted {
			if err := setActive(txn, id, !u.Deleted()); err != nil {
				return err
			}
		}
		return putJSON(txn, userKey(id), &u)
	})
	if ce := asCallbackError(err); ce != nil {
		return nil, ce.err
	}
	if err != nil {
		return nil, fmt.Errorf("updating user %s: %w", id, err)
	}
	return &u, nil
}

// DeleteUser soft deletes the user: DeletedAt and UpdatedAt become now and
// every key of the user is deactivated. It fails with ErrNotFound when the
// user does not exist or is already deleted.
//
// The user and as many of its keys as one Badger transaction holds are
// written together; the keys of a user with more than that (about 4,900
// on disk) are deactivated in further transactions. Until those commit
// the remaining keys still say they are active, but none authenticates a
// request: inference refuses the keys of a deleted user. A DeleteUser of
// a user already deleted deactivates any key left active (after a crash
// between those transactions) before it fails with ErrNotFound.
func (s *Store) DeleteUser(id string, now time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("deleting user %s: %w", id, ErrClosed)
	}
	first, alreadyDeleted := true, false
	for {
		more := false
		err := s.updateOpen(func(txn *badger.Txn) error {
			more = false
			written := 0
			if first {
				var u User
				if err := getJSON(txn, userKey(id), &u); err != nil {
					return err
				}
				alreadyDeleted = u.Deleted()
				if !alreadyDeleted {
					deletedAt := now
					u.DeletedAt = &deletedAt
					u.UpdatedAt = now
					if err := putJSON(txn, userKey(id), &u); err != nil {
						return err
					}
					if err := setActive(txn, id, false); err != nil {
						return err
					}
					written++
				}
			}
			for _, keyID := range keyIDsOfUser(txn, id) {
				var k APIKey
				err := getJSON(txn, apiKeyKey(keyID), &k)
				if errors.Is(err, ErrNotFound) {
					continue // dangling index entry; nothing to deactivate
				}
				if err != nil {
					return err
				}
				if !k.IsActive {
					continue
				}
				k.IsActive = false
				err = putJSON(txn, apiKeyKey(keyID), &k)
				if errors.Is(err, badger.ErrTxnTooBig) && written > 0 {
					more = true
					return nil // commit this batch; the next takes the rest
				}
				if err != nil {
					return fmt.Errorf("deactivating key %s: %w", keyID, err)
				}
				written++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("deleting user %s: %w", id, err)
		}
		first = false
		if !more {
			break
		}
	}
	if err := s.syncStore(); err != nil {
		return fmt.Errorf("deleting user %s: %w", id, err)
	}
	if alreadyDeleted {
		return fmt.Errorf("deleting user %s: %w", id, ErrNotFound)
	}
	return nil
}

// checkBudget fails with ErrBudgetMissing unless the budget id names an
// existing budget; a nil id is no budget and always fine.
func checkBudget(txn *badger.Txn, budgetID *string) error {
	if budgetID == nil {
		return nil
	}
	found, err := exists(txn, budgetKey(*budgetID))
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("budget %s: %w", *budgetID, ErrBudgetMissing)
	}
	return nil
}

// setActive adds the user to, or removes it from, the index of active users.
func setActive(txn *badger.Txn, userID string, active bool) error {
	if active {
		return txn.Set(activeUserKey(userID), []byte{})
	}
	return txn.Delete(activeUserKey(userID))
}
