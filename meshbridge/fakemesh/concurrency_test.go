package fakemesh

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// TestConcurrentSendCollect runs senders, chunk uploads, a collector and
// test-API readers at once; run with -race it checks the locking.
func TestConcurrentSendCollect(t *testing.T) {
	e := newEnv(t, nil)
	const senders, perSender = 4, 25
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for i := 0; i < perSender; i++ {
				r := e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox", "X26ABC1", map[string]string{
					"Accept": v2, "mex-To": "X26ABC2", "mex-WorkflowID": "TEST_WORKFLOW", "mex-Chunk-Range": "1:2",
				}, []byte("a"))
				if r.status != 202 {
					t.Errorf("send: %d", r.status)
					return
				}
				id := r.json(t)["message_id"].(string)
				e.srv.Message(id)
				r = e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox/"+id+"/2", "X26ABC1",
					map[string]string{"mex-Chunk-Range": "2:2"}, []byte(strconv.Itoa(s)))
				if r.status != 202 {
					t.Errorf("chunk 2: %d", r.status)
					return
				}
			}
		}(s)
	}
	collected := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rounds := 0; collected < senders*perSender && rounds < 10000; rounds++ {
			for _, id := range e.inboxIDs("X26ABC2") {
				if r := e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox/"+id+"/2", "X26ABC2", nil, nil); r.status != 200 {
					t.Errorf("download: %d", r.status)
					return
				}
				if r := e.req(http.MethodPut, "/messageexchange/X26ABC2/inbox/"+id+"/status/acknowledged", "X26ABC2", nil, nil); r.status != 200 {
					t.Errorf("ack: %d", r.status)
					return
				}
				collected++
			}
			e.srv.Stats()
			e.srv.Inbox("X26ABC2")
		}
	}()
	wg.Wait()
	<-done
	if collected != senders*perSender {
		t.Fatalf("collected %d of %d", collected, senders*perSender)
	}
	if st := e.srv.Stats(); st.Delivered != senders*perSender || st.Acks != senders*perSender {
		t.Fatalf("stats %+v", st)
	}
}
