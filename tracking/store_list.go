package tracking

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ListFilter selects a client's messages.
type ListFilter struct {
	State          []State   // any of these states; empty = all
	NeedsAttention bool      // only failed states or AckOverdue
	Since          time.Time // created at or after
	Limit          int       // page size; default 50, max 200
	Cursor         string    // from the previous page's next
}

const (
	defaultListLimit = 50
	maxListLimit     = 200
	listBatch        = 200
	// maxListScan bounds the records one List call examines, so a selective
	// filter over a large history answers quickly with a partial page and a
	// cursor to continue from.
	maxListScan = 5000
)

// listCursor is the position after the last record examined: the index
// score (created-at unix ms) and the member id, newest first.
type listCursor struct {
	score int64
	id    string
}

func (c listCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.score, 10) + "|" + c.id))
}

func decodeCursor(s string) (listCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return listCursor{}, ErrInvalidCursor
	}
	score, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return listCursor{}, ErrInvalidCursor
	}
	n, err := strconv.ParseInt(score, 10, 64)
	if err != nil {
		return listCursor{}, ErrInvalidCursor
	}
	return listCursor{score: n, id: id}, nil
}

func (f *ListFilter) matches(m *Message) bool {
	if len(f.State) > 0 && !slices.Contains(f.State, m.State) {
		return false
	}
	if f.NeedsAttention && !m.State.Failed() && !m.AckOverdue {
		return false
	}
	return true
}

// List returns a page of clientID's messages, newest first, and the cursor of
// the next page ("" at the end). A page may be shorter than Limit (even
// empty) with a non-empty cursor when a selective filter hit the scan bound.
func (s *Store) List(ctx context.Context, clientID string, f ListFilter) ([]*Message, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	maxScore := "+inf"
	var after *listCursor
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		after = &c
		maxScore = strconv.FormatInt(c.score, 10)
	}
	minScore := "-inf"
	if !f.Since.IsZero() {
		minScore = strconv.FormatInt(f.Since.UnixMilli(), 10)
	}
	key := clientKey(clientID)
	page := make([]*Message, 0, limit)
	scanned := 0
	var offset int64
	for scanned < maxListScan {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{
			Max: maxScore, Min: minScore, Offset: offset, Count: listBatch,
		}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("tracking: list: %w", err)
		}
		// Whether Redis had more: judged before the cursor skip trims zs.
		exhausted := len(zs) < listBatch
		// Members sharing the cursor's score sort by id descending; skip
		// those already returned.
		if after != nil {
			skip := 0
			for skip < len(zs) && int64(zs[skip].Score) == after.score && zs[skip].Member.(string) >= after.id {
				skip++
			}
			if skip == len(zs) && len(zs) > 0 {
				offset += int64(len(zs))
				continue
			}
			zs = zs[skip:]
			offset += int64(skip)
			after = nil
		}
		if len(zs) == 0 {
			return page, "", nil
		}
		ids := make([]string, len(zs))
		keys := make([]string, len(zs))
		for i, z := range zs {
			ids[i] = z.Member.(string)
			keys[i] = msgKey(ids[i])
		}
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, "", fmt.Errorf("tracking: list: %w", err)
		}
		for i, v := range vals {
			scanned++
			offset++
			pos := listCursor{score: int64(zs[i].Score), id: ids[i]}
			str, ok := v.(string)
			if !ok { // expired record: its index entry is pruned on a later Accept
				continue
			}
			m, err := decodeMessage([]byte(str))
			if err != nil {
				return nil, "", err
			}
			if m.ClientID != clientID || !f.matches(m) {
				if scanned >= maxListScan {
					return page, pos.encode(), nil
				}
				continue
			}
			page = append(page, m)
			if len(page) == limit {
				if i == len(vals)-1 && exhausted {
					return page, "", nil
				}
				return page, pos.encode(), nil
			}
			if scanned >= maxListScan {
				return page, pos.encode(), nil
			}
		}
		if exhausted {
			return page, "", nil
		}
	}
	return page, "", nil
}
