// The chaos test's machinery: chat processes it can kill, stop and restart,
// and chat users that send numbered messages and count what reaches them.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// procOutput collects what a chat process prints: it hands on the
// "listening on" line and keeps the last lines for a failure report.
type procOutput struct {
	mu      sync.Mutex
	partial []byte
	tail    []string
	ready   chan string // the base URL, once
}

func newProcOutput() *procOutput { return &procOutput{ready: make(chan string, 1)} }

func (o *procOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		line := string(o.partial[:i])
		o.partial = o.partial[i+1:]
		if base, ok := strings.CutPrefix(line, "listening on "); ok {
			select {
			case o.ready <- base:
			default:
			}
		}
		o.tail = append(o.tail, line)
		if len(o.tail) > 8 {
			o.tail = o.tail[1:]
		}
	}
	return len(p), nil
}

func (o *procOutput) lines() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.tail, "\n")
}

// chatProc is one chat node as a separate process. Only the test's
// goroutine calls its methods.
type chatProc struct {
	bin, cluster, peers string
	httpAddr            string // from the first start; a restart reuses it
	cmd                 *exec.Cmd
	out, errOut         *procOutput
	exited              chan struct{}
}

func (p *chatProc) start() error {
	addr := p.httpAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	cmd := exec.Command(p.bin, "-addr", addr, "-cluster", p.cluster, "-peers", p.peers, "-formation", "3")
	p.out, p.errOut = newProcOutput(), newProcOutput()
	cmd.Stdout, cmd.Stderr = p.out, p.errOut
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	exited := p.exited
	// Started here, ends when the process exits: the test kills every
	// process it started in its cleanup.
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return nil
}

// waitReady waits for the "listening on" line and returns the base URL and
// when it was seen.
func (p *chatProc) waitReady(limit time.Duration) (string, time.Time, error) {
	select {
	case base := <-p.out.ready:
		p.httpAddr = strings.TrimPrefix(base, "http://")
		return base, time.Now(), nil
	case <-p.exited:
		return "", time.Time{}, fmt.Errorf("chat %s exited before it was ready; stderr:\n%s", p.cluster, p.errOut.lines())
	case <-time.After(limit):
		return "", time.Time{}, fmt.Errorf("chat %s not ready within %v; stderr:\n%s", p.cluster, limit, p.errOut.lines())
	}
}

func (p *chatProc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL (which also ends a stopped process) and waits for the
// exit.
func (p *chatProc) kill(limit time.Duration) error {
	if !p.running() {
		return nil
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
		return nil
	case <-time.After(limit):
		return fmt.Errorf("chat %s did not exit within %v of SIGKILL", p.cluster, limit)
	}
}

// A stream is the numbered messages from one sender to one receiver, by
// direct message ("dm") or through the room ("room"). sent[seq] is the
// phase seq was sent in (-1: the write failed); seen[seq] counts arrivals.
type stream struct {
	key        string
	sent       []int8
	seen       []uint8
	maxSeen    int
	dup, reord [nPhases]int
	last       time.Time
}

func streamKey(kind, from, to string) string { return kind + " " + from + ">" + to }

// session is one websocket connection of a user.
type session struct {
	conn  *websocket.Conn
	ready bool          // the marker came back: Init is done
	done  chan struct{} // closed when the read loop ends
	// members is the room as the chat told this connection: nil until
	// the first message, which must list it.
	members map[string]bool
}

// user is one chat user. Its run goroutine owns the connection's reads;
// writes go through wmu (senders, probes and the marker).
type user struct {
	h          *harness
	name, room string
	node       int
	auto       bool        // reconnect after an unexpected close
	replies    chan string // probe users: answers to probes, then "marker"
	arrivals   chan time.Time
	onlineSig  chan struct{}

	// Probe state, only touched by the test's goroutine: markers still
	// due for probes that timed out on session probed.
	probed       *session
	staleMarkers int

	wmu     sync.Mutex
	mu      sync.Mutex
	s       *session
	dialErr string               // why the last dial failed
	leftAt  map[string]time.Time // when the chat last said a name left
}

// view returns the room's members as u's connection knows them, sorted,
// and when each name last left, by the chat's news.
func (u *user) view() ([]string, map[string]time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var ms []string
	if u.s != nil {
		for n := range u.s.members {
			ms = append(ms, n)
		}
	}
	sort.Strings(ms)
	return ms, maps.Clone(u.leftAt)
}

// state says whether the user is online and, if not, why its last dial
// failed.
func (u *user) state() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.s != nil && u.s.ready {
		return "online"
	}
	return "offline, last dial: " + u.dialErr
}

func (u *user) session() *session {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.s
}

func (u *user) online() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.s != nil && u.s.ready
}

func (u *user) write(s *session, msg string) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	return s.conn.WriteMessage(websocket.TextMessage, []byte(msg))
}

// start connects the user in a new run goroutine (tracked by the harness):
// it dials until it gets in, reads until the connection ends and, for auto
// users, starts over. It ends when the harness stops or, for other users,
// when the connection ends.
func (u *user) start() {
	select {
	case <-u.onlineSig:
	default:
	}
	u.h.wg.Add(1)
	go func() {
		defer u.h.wg.Done()
		for {
			s := u.dial()
			if s == nil {
				return
			}
			u.read(s)
			if !u.auto || u.h.ctx.Err() != nil {
				return
			}
		}
	}()
}

// waitOnline waits until start's connection has answered the marker.
func (u *user) waitOnline(limit time.Duration) error {
	select {
	case <-u.onlineSig:
		return nil
	case <-time.After(limit):
		return fmt.Errorf("user %s on node %d not online within %v", u.name, u.node, limit)
	}
}

func (u *user) dial() *session {
	d := websocket.Dialer{HandshakeTimeout: 3 * time.Second}
	for {
		q := url.Values{"name": {u.name}, "room": {u.room}}
		c, resp, err := d.DialContext(u.h.ctx, "ws"+strings.TrimPrefix(u.h.base(u.node), "http")+"/ws?"+q.Encode(), nil)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err != nil {
			u.mu.Lock()
			u.dialErr = err.Error()
			if resp != nil {
				u.dialErr = resp.Status
			}
			u.mu.Unlock()
		}
		if err == nil {
			s := &session{conn: c, done: make(chan struct{})}
			u.mu.Lock()
			if u.h.stopping.Load() { // harness.stop has swept the sessions
				u.mu.Unlock()
				c.Close()
				return nil
			}
			u.s = s
			u.mu.Unlock()
			// Init (register, join) runs before any message is handled:
			// the marker's answer says the user is in.
			if u.write(s, markerMsg) == nil {
				return s
			}
			u.read(s) // records the close
			if !u.auto {
				return nil
			}
		}
		select {
		case <-u.h.ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond): // paces redials
		}
	}
}

// markerMsg is invalid for the chat, which answers it at once with an
// error and no registry call: its answer tells that what was sent before
// it has been handled.
const markerMsg = `{}`

type chatMsg struct {
	Presence *struct {
		Room    string   `json:"room"`
		Members []string `json:"members"`
	} `json:"presence"`
	Joined string `json:"joined"`
	Left   string `json:"left"`
	From   string `json:"from"`
	To     string `json:"to"`
	Room   string `json:"room"`
	Text   string `json:"text"`
	Error  string `json:"error"`
}

func (u *user) read(s *session) {
	defer close(s.done)
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			u.mu.Lock()
			s.ready = false
			u.mu.Unlock()
			u.h.closed(u, err)
			return
		}
		var m chatMsg
		if err := json.Unmarshal(data, &m); err != nil {
			u.h.otherError(u, "not JSON: "+string(data))
			continue
		}
		if u.presence(s, &m, data) {
			continue
		}
		switch {
		case m.Error != "" && m.Error == u.h.marker:
			u.mu.Lock()
			first := !s.ready
			s.ready = true
			u.mu.Unlock()
			if first {
				u.h.reconnected(u)
				select {
				case u.onlineSig <- struct{}{}:
				default:
				}
			} else {
				u.reply("marker")
			}
		case strings.HasPrefix(m.Error, "no such user: "):
			u.h.noSuchUser(u, strings.TrimPrefix(m.Error, "no such user: "))
			u.reply("nsu")
		case m.Error != "":
			u.h.otherError(u, m.Error)
			u.reply("error: " + m.Error)
		case strings.HasPrefix(m.Text, "probe "):
			select {
			case u.arrivals <- time.Now():
			default:
			}
		case m.Room != "" || m.To != "":
			u.h.arrive(u, m.From, m.Text)
		default:
			u.h.otherError(u, "unexpected: "+string(data))
		}
	}
}

// presence keeps s's view of the room from m, and says whether m was
// about presence. The first message of a connection must list its room,
// itself included; then a name joins when it is not there and leaves when
// it is. Anything else is a presence error.
func (u *user) presence(s *session, m *chatMsg, data []byte) bool {
	now := time.Now()
	u.mu.Lock()
	first := s.members == nil
	var bad string
	switch {
	case first && m.Presence == nil:
		bad = "the first message is not the room's presence: " + string(data)
		s.members = map[string]bool{}
	case first:
		s.members = map[string]bool{}
		for _, n := range m.Presence.Members {
			s.members[n] = true
		}
		if m.Presence.Room != u.room || !s.members[u.name] || !sort.StringsAreSorted(m.Presence.Members) {
			bad = "the room's presence is not this room's, sorted, with the user: " + string(data)
		}
	case m.Presence != nil:
		bad = "a second presence message: " + string(data)
	case m.Joined != "":
		if s.members[m.Joined] {
			bad = m.Joined + " joined twice"
		}
		s.members[m.Joined] = true
	case m.Left != "":
		if !s.members[m.Left] {
			bad = m.Left + " left, but was not there"
		}
		delete(s.members, m.Left)
		if u.leftAt == nil {
			u.leftAt = map[string]time.Time{}
		}
		u.leftAt[m.Left] = now
	}
	u.mu.Unlock()
	if bad != "" {
		u.h.presenceError(u, bad)
	}
	if m.Left != "" {
		u.h.left(u, m.Left)
	}
	if m.Presence != nil || m.Joined != "" || m.Left != "" {
		select {
		case u.h.presenceChanged <- struct{}{}:
		default:
		}
		return true
	}
	return false
}

func (u *user) reply(r string) {
	if u.replies == nil {
		return
	}
	select {
	case u.replies <- r:
	default:
	}
}

// closeCode is the close code a read error carries; 1006 when the
// connection ended without a close frame.
func closeCode(err error) (int, string) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Text
	}
	return websocket.CloseAbnormalClosure, err.Error()
}

// probe sends a direct message from p to target, then the marker, and
// says what p heard in between: "sent" (taken by the registry, no answer),
// "nsu" (no such user), "error: ..." , "closed" or "no answer".
func probe(p *user, target string, seq int, limit time.Duration) string {
	s := p.session()
	if s == nil || !p.online() {
		return "offline"
	}
	if p.probed != s {
		p.probed, p.staleMarkers = s, 0
	}
	for len(p.replies) > 0 {
		if <-p.replies == "marker" && p.staleMarkers > 0 {
			p.staleMarkers--
		}
	}
	msg, _ := json.Marshal(in{To: target, Text: "probe " + target + " #" + strconv.Itoa(seq)})
	if p.write(s, string(msg)) != nil || p.write(s, markerMsg) != nil {
		return "closed"
	}
	outcome := "sent"
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case r := <-p.replies:
			switch {
			case r != "marker":
				outcome = r
			case p.staleMarkers > 0: // what came before was an earlier probe's
				p.staleMarkers--
				outcome = "sent"
			default:
				return outcome
			}
		case <-s.done:
			return "closed"
		case <-timer.C:
			p.staleMarkers++
			return "no answer"
		}
	}
}

// calibrateMarker asks a node for its answer to the marker.
func calibrateMarker(base string) (string, error) {
	d := websocket.Dialer{HandshakeTimeout: 3 * time.Second}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws?name=calibrate&room=calibrate", nil)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return "", fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return "", err
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte(markerMsg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var data []byte
	var m chatMsg
	// The room's presence comes first; then who joins or leaves may come
	// before the answer.
	for m.Error == "" {
		_, data, err = c.ReadMessage()
		if err != nil {
			return "", err
		}
		m = chatMsg{}
		if err := json.Unmarshal(data, &m); err != nil {
			return "", fmt.Errorf("not JSON: %s", data)
		}
		if m.Presence == nil && m.Joined == "" && m.Left == "" && m.Error == "" {
			return "", fmt.Errorf("the marker %s was answered %s, not with an error", markerMsg, data)
		}
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	return m.Error, nil
}

// pump sends numbered messages from u every interval until ctx ends: to
// one user, or to the room when to is "". streams are the streams each
// message feeds (one for a DM; one per room member for the room).
func (u *user) pump(ctx context.Context, every time.Duration, to string, streams []*stream) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	kind, dest := "dm", to
	if to == "" {
		kind, dest = "room", u.room
	}
	for seq := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s := u.session()
		if s == nil || !u.online() {
			continue
		}
		msg, _ := json.Marshal(in{To: to, Text: fmt.Sprintf("%s %s->%s #%d", kind, u.name, dest, seq)})
		u.h.sent(streams, seq)
		if err := u.write(s, string(msg)); err != nil {
			u.h.unsent(streams, seq)
		}
		seq++
	}
}

func parseSeq(text string) (kind string, seq int, ok bool) {
	kind, _, _ = strings.Cut(text, " ")
	i := strings.LastIndexByte(text, '#')
	if i < 0 {
		return "", 0, false
	}
	seq, err := strconv.Atoi(text[i+1:])
	return kind, seq, err == nil && seq >= 0
}
