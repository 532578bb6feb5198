package tracking

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/redis/go-redis/v9"
)

// upload streams r into key in s.chunk pieces (SET for the first, APPEND for
// the rest) so a large document never sits whole in gateway memory. The key
// gets a short TTL so an interrupted upload cleans itself up.
func (s *Store) upload(ctx context.Context, key string, r io.Reader) (int64, error) {
	if r == nil {
		r = eofReader{}
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	var total int64
	first := true
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 || first {
			var err error
			if first {
				err = s.rdb.Set(ctx, key, buf[:n], uploadTTL).Err()
				first = false
			} else {
				// Do passes the []byte through to the connection without a copy.
				err = s.rdb.Do(ctx, "APPEND", key, buf[:n]).Err()
			}
			if err != nil {
				return 0, fmt.Errorf("tracking: store payload: %w", err)
			}
			total += int64(n)
		}
		switch {
		case rerr == nil:
			continue
		// io.ReadFull returns these sentinels themselves at a clean end; a
		// reader's own error that merely wraps one (a cut-short upload) is a
		// failure, so compare, don't errors.Is.
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return total, nil
		default:
			return 0, fmt.Errorf("tracking: read payload: %w", rerr)
		}
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// OpenPayload streams the stored document of message id from byte offset,
// one GETRANGE of PayloadChunk bytes at a time. ErrNotFound when the
// message is unknown, ErrPayloadGone when the document was already removed.
func (s *Store) OpenPayload(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	m, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.OpenPayloadOf(ctx, m, offset)
}

// OpenPayloadOf is OpenPayload for a record the caller has just read. The
// first piece is fetched at once, in the same round trip that checks the
// document is still stored: a one-piece document costs one round trip.
func (s *Store) OpenPayloadOf(ctx context.Context, m *Message, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, errors.New("tracking: open payload: negative offset")
	}
	if offset > m.PayloadSize {
		return nil, fmt.Errorf("tracking: open payload: offset %d beyond size %d", offset, m.PayloadSize)
	}
	key := payloadKey(m.ID)
	r := &payloadReader{ctx: ctx, rdb: s.rdb, key: key, off: offset, size: m.PayloadSize, piece: int64(s.chunk)}
	var (
		exists *redis.IntCmd
		first  *redis.StringCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, key)
		if offset < m.PayloadSize {
			first = p.GetRange(ctx, key, offset, min(offset+r.piece, m.PayloadSize)-1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tracking: open payload: %w", err)
	}
	if exists.Val() == 0 {
		return nil, ErrPayloadGone
	}
	if first != nil {
		data, _ := first.Bytes() // the pipeline's error was checked above
		if err := r.take(data); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// payloadReader reads [off, size) of a Redis string in bounded pieces.
type payloadReader struct {
	ctx   context.Context
	rdb   redis.UniversalClient
	key   string
	off   int64 // next byte to fetch from Redis
	size  int64
	piece int64
	buf   []byte // fetched, not yet returned
}

func (p *payloadReader) Read(b []byte) (int, error) {
	if len(p.buf) == 0 {
		if p.off >= p.size {
			return 0, io.EOF
		}
		end := min(p.off+p.piece, p.size) - 1
		data, err := p.rdb.GetRange(p.ctx, p.key, p.off, end).Bytes()
		if err != nil {
			return 0, fmt.Errorf("tracking: read payload: %w", err)
		}
		if err := p.take(data); err != nil {
			return 0, err
		}
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	return n, nil
}

// take accepts the piece fetched from p.off, which must be whole.
func (p *payloadReader) take(data []byte) error {
	want := min(p.off+p.piece, p.size) - p.off
	if int64(len(data)) != want {
		// The key vanished or shrank under us (retention or a delete).
		return fmt.Errorf("tracking: read payload: %w", ErrPayloadGone)
	}
	p.buf = data
	p.off += want
	return nil
}

func (p *payloadReader) Close() error { p.buf = nil; return nil }
