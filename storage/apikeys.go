package storage

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// CreateKey stores k together with its hash index and its entry in the
// per-user key index, in one transaction. When k's user does not exist,
// newUser (whose UserID must equal k.UserID) is created with it; with a nil
// newUser CreateKey fails with ErrNotFound instead. It fails with
// ErrUserDeleted when the user is soft deleted, and with ErrExists when the
// key id or hash is taken. The key and the check of its user are one
// transaction that also rewrites the user record, so a DeleteUser running
// at the same time either sees the key and deactivates it or commits first
// and makes this check fail.
func (s *Store) CreateKey(k *APIKey, newUser *User) error {
	if err := validateKey(k); err != nil {
		return fmt.Errorf("creating key: %w", err)
	}
	if newUser != nil && newUser.UserID != k.UserID {
		return fmt.Errorf("creating key %s: new user %q is not the key's user %q",
			k.ID, newUser.UserID, k.UserID)
	}
	err := s.update(func(txn *badger.Txn) error {
		for _, key := range [][]byte{apiKeyKey(k.ID), keyHashKey(k.KeyHash)} {
			found, err := exists(txn, key)
			if err != nil {
				return err
			}
			if found {
				return ErrExists
			}
		}

		err := checkKeyOwner(txn, k.UserID)
		switch {
		case errors.Is(err, ErrNotFound) && newUser != nil:
			if err := putJSON(txn, userKey(newUser.UserID), newUser); err != nil {
				return err
			}
			if err := setActive(txn, newUser.UserID, true); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("user %s: %w", k.UserID, err)
		default:
			if err := touch(txn, userKey(k.UserID)); err != nil {
				return err
			}
		}

		if err := txn.Set(keyHashKey(k.KeyHash), []byte(k.ID)); err != nil {
			return err
		}
		if err := txn.Set(keyUserKey(k.UserID, k.ID), []byte{}); err != nil {
			return err
		}
		return putJSON(txn, apiKeyKey(k.ID), k)
	})
	if err != nil {
		return fmt.Errorf("creating key %s: %w", k.ID, err)
	}
	return nil
}

// GetKey returns the key with the given id or ErrNotFound.
func (s *Store) GetKey(id string) (*APIKey, error) {
	var k APIKey
	err := s.view(func(txn *badger.Txn) error {
		return getJSON(txn, apiKeyKey(id), &k)
	})
	if err != nil {
		return nil, fmt.Errorf("loading key %s: %w", id, err)
	}
	return &k, nil
}

// GetKeyByHash returns the key whose KeyHash is hash, looked up through the
// hash index, or ErrNotFound.
func (s *Store) GetKeyByHash(hash string) (*APIKey, error) {
	var k APIKey
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(keyHashKey(hash))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		id, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		return getJSON(txn, apiKeyKey(string(id)), &k)
	})
	if err != nil {
		// The hash is a credential digest; keep it out of error messages.
		return nil, fmt.Errorf("loading key by hash: %w", err)
	}
	return &k, nil
}

// ListKeys returns keys, active or not, in creation (id) order, skipping the
// first skip and returning at most limit.
func (s *Store) ListKeys(skip, limit int) ([]APIKey, error) {
	var keys []APIKey
	err := s.view(func(txn *badger.Txn) error {
		var err error
		keys, err = listPage[APIKey](txn, []byte(prefixKey), skip, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	return keys, nil
}

// ListKeysByUser returns all keys of the user in creation order, through
// the per-user key index.
func (s *Store) ListKeysByUser(userID string) ([]APIKey, error) {
	keys := []APIKey{}
	err := s.view(func(txn *badger.Txn) error {
		for _, id := range keyIDsOfUser(txn, userID) {
			var k APIKey
			err := getJSON(txn, apiKeyKey(id), &k)
			if errors.Is(err, ErrNotFound) {
				continue // the index is written with the key; never expected
			}
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing keys of user %s: %w", userID, err)
	}
	return keys, nil
}

// UpdateKey applies fn to the stored key and saves the result in one
// transaction, with the same contract as UpdateUser. Changes to ID are
// ignored. When fn changes KeyHash (rotation) the hash index follows: the
// old entry is removed and the new one written, and ErrExists is returned if
// another key has the new hash. When fn changes UserID the per-user index
// follows; the new user must exist (ErrNotFound) and be active
// (ErrUserDeleted). A key is made active only while its user is not
// deleted (ErrUserDeleted). A new owner, or the owner of a key made active,
// is checked and rewritten in the same transaction, so the update and a
// concurrent DeleteUser of that user are ordered: never an active key of a
// deleted user.
func (s *Store) UpdateKey(id string, fn func(*APIKey) error) (*APIKey, error) {
	var k APIKey
	err := s.update(func(txn *badger.Txn) error {
		k = APIKey{} // a retry must not see fields of the previous attempt
		if err := getJSON(txn, apiKeyKey(id), &k); err != nil {
			return err
		}
		oldHash, oldUser, wasActive := k.KeyHash, k.UserID, k.IsActive
		if err := fn(&k); err != nil {
			return &callbackError{err: err}
		}
		k.ID = id
		if err := validateKey(&k); err != nil {
			return err
		}

		if k.KeyHash != oldHash {
			found, err := exists(txn, keyHashKey(k.KeyHash))
			if err != nil {
				return err
			}
			if found {
				return fmt.Errorf("new key hash: %w", ErrExists)
			}
			if err := txn.Delete(keyHashKey(oldHash)); err != nil {
				return err
			}
			if err := txn.Set(keyHashKey(k.KeyHash), []byte(id)); err != nil {
				return err
			}
		}

		if k.IsActive && !wasActive && k.UserID == oldUser {
			err := checkKeyOwner(txn, k.UserID)
			switch {
			case errors.Is(err, ErrNotFound):
				// No user record to protect (never expected).
			case err != nil:
				return fmt.Errorf("owner %s: %w", k.UserID, err)
			default:
				if err := touch(txn, userKey(k.UserID)); err != nil {
					return err
				}
			}
		}

		if k.UserID != oldUser {
			if err := checkKeyOwner(txn, k.UserID); err != nil {
				return fmt.Errorf("new owner %s: %w", k.UserID, err)
			}
			if err := touch(txn, userKey(k.UserID)); err != nil {
				return err
			}
			if err := txn.Delete(keyUserKey(oldUser, id)); err != nil {
				return err
			}
			if err := txn.Set(keyUserKey(k.UserID, id), []byte{}); err != nil {
				return err
			}
		}

		return putJSON(txn, apiKeyKey(id), &k)
	})
	if ce := asCallbackError(err); ce != nil {
		return nil, ce.err
	}
	if err != nil {
		return nil, fmt.Errorf("updating key %s: %w", id, err)
	}
	return &k, nil
}

// DeleteKey removes the key, its index entries and its spend counters. Usage records that name
// the key are kept. It fails with ErrNotFound when there is no such key.
func (s *Store) DeleteKey(id string) error {
	err := s.update(func(txn *badger.Txn) error {
		var k APIKey
		if err := getJSON(txn, apiKeyKey(id), &k); err != nil {
			return err
		}
		for _, key := range [][]byte{keyHashKey(k.KeyHash), keyUserKey(k.UserID, id), apiKeyKey(id)} {
			if err := txn.Delete(key); err != nil {
				return err
			}
		}
		return deletePrefix(txn, spendPrefix(SpendOfKey, id))
	})
	if err != nil {
		return fmt.Errorf("deleting key %s: %w", id, err)
	}
	return nil
}

// TouchKey records that the key was used at t. It never moves LastUsedAt
// backwards, and a missing key is not an error: it may have been deleted
// while the request that used it was in flight. The write reaches the disk
// with the next sync (within Options.SyncInterval), not before TouchKey
// returns.
func (s *Store) TouchKey(id string, t time.Time) error {
	err := s.updateLazy(func(txn *badger.Txn) error {
		var k APIKey
		err := getJSON(txn, apiKeyKey(id), &k)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if k.LastUsedAt != nil && !t.After(*k.LastUsedAt) {
			return nil
		}
		usedAt := t
		k.LastUsedAt = &usedAt
		return putJSON(txn, apiKeyKey(id), &k)
	})
	if err != nil {
		return fmt.Errorf("touching key %s: %w", id, err)
	}
	return nil
}

// ValidateKey checks the fields a key's lookups are built from, for every
// store.
func ValidateKey(k *APIKey) error { return validateKey(k) }

// validateKey checks the fields the key indexes are built from.
func validateKey(k *APIKey) error {
	switch {
	case !validID(k.ID):
		return fmt.Errorf("invalid key id %q", k.ID)
	case !validID(k.UserID):
		return fmt.Errorf("invalid user id %q", k.UserID)
	case k.KeyHash == "":
		return errors.New("empty key hash")
	}
	return nil
}

// checkKeyOwner reports whether userID may own keys: ErrNotFound when the
// user does not exist, ErrUserDeleted when it is soft deleted.
func checkKeyOwner(txn *badger.Txn, userID string) error {
	var u User
	if err := getJSON(txn, userKey(userID), &u); err != nil {
		return err
	}
	if u.Deleted() {
		return ErrUserDeleted
	}
	return nil
}

// keyIDsOfUser returns the ids of the user's keys in id order, read from
// the per-user key index without touching values.
func keyIDsOfUser(txn *badger.Txn, userID string) []string {
	if !validID(userID) {
		return nil
	}
	prefix := keyUserPrefix(userID)
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	defer it.Close()

	var ids []string
	for it.Rewind(); it.ValidForPrefix(prefix); it.Next() {
		ids = append(ids, string(it.Item().Key()[len(prefix):]))
	}
	return ids
}
