package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/protows/protows/internal/syncbuf"
)

// findBrowser returns the path of a Chromium or Chrome binary, or skips
// the test.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("no chromium, chromium-browser or google-chrome in PATH; " +
		"to run this browser test, install one (Debian/Ubuntu: apt-get install chromium)")
	return ""
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// hasMessage is a JavaScript condition: the message list holds an item
// with exactly this text (and, unless cls is empty, this class).
func hasMessage(text, cls string) string {
	return `[...document.querySelectorAll("#messages li")].some(li => li.textContent === ` + jsString(text) +
		` && (` + jsString(cls) + ` === "" || li.classList.contains(` + jsString(cls) + `)))`
}

// clearInput empties the input with this id. (chromedp v0.23's SetValue
// cannot set an empty value: it fails with "could not set value on node".)
func clearInput(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.getElementById(` + jsString(id) + `).value = ""`)
}

// startBrowser starts a headless Chromium with one tab, tab, and returns
// it with ctx, the deadline of everything the browser does, and newTab,
// which opens another tab and returns a function that closes it. The
// test's cleanup closes the tabs still open, last opened first, and waits
// until the browser has exited.
func startBrowser(t *testing.T, browser string, limit time.Duration) (ctx, tab context.Context, newTab func() (context.Context, context.CancelFunc)) {
	t.Helper()
	// The allocator is made from ctx, so the browser dies with it at the
	// latest.
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	profile := t.TempDir() // removed after the cleanup below has run
	var output syncbuf.Buffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(&output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	cancels := []context.CancelFunc{cancelTab}
	t.Cleanup(func() {
		for i := len(cancels) - 1; i >= 0; i-- {
			cancels[i]() // closes the tab; the first one ends the browser
		}
		cancelAlloc() // waits until the browser process has exited
		cancel()
		if t.Failed() {
			t.Logf("browser output:\n%s", output.String())
		}
	})
	// The first Do starts the browser; other tabs open in it.
	require.NoError(t, chromedp.Do(tab), "starting %s", browser)
	return ctx, tab, func() (context.Context, context.CancelFunc) {
		other, c := chromedp.NewContext(tab)
		cancels = append(cancels, c)
		return other, c
	}
}

// TestBrowserChat drives the chat page in two tabs of a headless Chromium:
// both join one room through the page's form, a message typed in one tab
// shows up in the other, and when the server shuts down both pages show
// that they lost the connection.
func TestBrowserChat(t *testing.T) {
	browser := findBrowser(t)
	base, stop := startChat(t)

	ctx, aliceCtx, newTab := startBrowser(t, browser, 30*time.Second)
	bobCtx, _ := newTab()

	const room = "browsers"
	for _, tab := range []struct {
		ctx  context.Context
		name string
	}{{aliceCtx, "alice"}, {bobCtx, "bob"}} {
		require.NoError(t, chromedp.Do(tab.ctx,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.ID("join")),
		), "%s: loading the page", tab.name)
		state, err := chromedp.Run(tab.ctx, chromedp.Evaluate[string](`document.getElementById("state").dataset.state`))
		require.NoError(t, err)
		assert.Equal(t, "disconnected", state, "%s: state before joining", tab.name)
		disabled, err := chromedp.Run(tab.ctx, chromedp.Evaluate[bool](`document.getElementById("sendButton").disabled`))
		require.NoError(t, err)
		assert.True(t, disabled, "%s: Send is disabled before joining", tab.name)

		// Join through the form, as a person would.
		require.NoError(t, chromedp.Do(tab.ctx,
			chromedp.SendKeys(chromedp.ID("name"), tab.name),
			clearInput("room"),
			chromedp.SendKeys(chromedp.ID("room"), room),
			chromedp.Click(chromedp.ID("joinButton")),
			chromedp.WaitVisible(chromedp.CSS(`#state[data-state="connected"]`)),
			chromedp.WaitEnabled(chromedp.ID("text")),
		), "%s: joining", tab.name)
		text, err := chromedp.Run(tab.ctx, chromedp.Text(chromedp.ID("state")))
		require.NoError(t, err)
		assert.Equal(t, "connected as "+tab.name+" in "+room, text)

		// The page is connected once the handshake is done; the server
		// joins the room in Init, after it. An answer from the server
		// shows Init has run: a direct message to nobody gets an error.
		require.NoError(t, chromedp.Do(tab.ctx,
			chromedp.SendKeys(chromedp.ID("to"), "nobody"),
			chromedp.SendKeys(chromedp.ID("text"), "anyone?"),
			chromedp.Click(chromedp.ID("sendButton")),
			chromedp.Poll[chromedp.Void](hasMessage("no such user: nobody", "error")),
			clearInput("to"),
		), "%s: round trip through the server", tab.name)
	}

	// alice says something to the room; bob, and alice herself, see it.
	require.NoError(t, chromedp.Do(aliceCtx,
		chromedp.SendKeys(chromedp.ID("text"), "hello from alice"),
		chromedp.Click(chromedp.ID("sendButton")),
	), "alice: sending")
	require.NoError(t, chromedp.Do(bobCtx,
		chromedp.Poll[chromedp.Void](hasMessage("alice: hello from alice", "")),
	), "bob: waiting for alice's message")
	require.NoError(t, chromedp.Do(aliceCtx,
		chromedp.Poll[chromedp.Void](hasMessage("alice: hello from alice", "")),
	), "alice: waiting for her own message")
	left, err := chromedp.Run(aliceCtx, chromedp.Value(chromedp.ID("text")))
	require.NoError(t, err)
	assert.Empty(t, left, "the message box is cleared after sending")

	// bob answers alice alone.
	require.NoError(t, chromedp.Do(bobCtx,
		chromedp.SendKeys(chromedp.ID("to"), "alice"),
		chromedp.SendKeys(chromedp.ID("text"), "psst"),
		chromedp.Click(chromedp.ID("sendButton")),
	), "bob: whispering")
	require.NoError(t, chromedp.Do(aliceCtx,
		chromedp.Poll[chromedp.Void](hasMessage("bob → alice: psst", "whisper")),
	), "alice: waiting for bob's whisper")

	// Record every state each page shows from now on: the page moves on
	// from the first one (the close code) as it tries to reconnect.
	const record = `(() => {
		window.seenStates = [];
		const s = document.getElementById("state");
		new MutationObserver(() => window.seenStates.push(s.dataset.state + " | " + s.textContent))
			.observe(s, {attributes: true, childList: true, characterData: true, subtree: true});
		return true;
	})()`
	for _, tabCtx := range []context.Context{aliceCtx, bobCtx} {
		_, err := chromedp.Run(tabCtx, chromedp.Evaluate[bool](record))
		require.NoError(t, err)
	}

	// The server shuts down: it closes every connection with 1001 (going
	// away), then stops its HTTP server. The pages are checked while that
	// runs.
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()

	for _, tab := range []struct {
		ctx  context.Context
		name string
	}{{aliceCtx, "alice"}, {bobCtx, "bob"}} {
		err := chromedp.Do(tab.ctx,
			chromedp.Poll[chromedp.Void](`window.seenStates.some(s => s.startsWith("reconnecting | disconnected (1001)"))`),
		)
		seen, _ := chromedp.Run(tab.ctx, chromedp.Evaluate[[]string](`window.seenStates`))
		require.NoError(t, err, "%s: the page did not show the close; it showed %q", tab.name, seen)
		// It keeps trying while the server is gone, and never claims to be
		// connected.
		state, err := chromedp.Run(tab.ctx, chromedp.Evaluate[string](`document.getElementById("state").dataset.state`))
		require.NoError(t, err)
		assert.Contains(t, []string{"reconnecting", "disconnected"}, state, "%s: state after the shutdown", tab.name)
		disabled, err := chromedp.Run(tab.ctx, chromedp.Evaluate[bool](
			`document.getElementById("sendButton").disabled && document.getElementById("text").disabled`))
		require.NoError(t, err)
		assert.True(t, disabled, "%s: sending is disabled after the shutdown", tab.name)
		t.Logf("%s: states after the shutdown: %q", tab.name, seen)
	}

	// Chromium keeps a spare connection it never uses; the server must not
	// let it hold up the shutdown (run closes what Shutdown left).
	select {
	case err := <-stopped:
		assert.NoError(t, err, "run after the shutdown")
	case <-ctx.Done():
		t.Fatal("the server did not stop")
	}
}

// membersShown is a JavaScript condition: the page's member list shows
// exactly these names, in this order.
func membersShown(names ...string) string {
	b, _ := json.Marshal(names)
	return `JSON.stringify([...document.querySelectorAll("#members li")].map(li => li.textContent)) === ` + jsString(string(b))
}

// joinPage loads the chat page in tab and joins room as name through the
// form.
func joinPage(t *testing.T, tab context.Context, base, name, room string) {
	t.Helper()
	require.NoError(t, chromedp.Do(tab,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("join")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		clearInput("room"),
		chromedp.SendKeys(chromedp.ID("room"), room),
		chromedp.Click(chromedp.ID("joinButton")),
		chromedp.WaitVisible(chromedp.CSS(`#state[data-state="connected"]`)),
	), "%s: joining", name)
}

// TestBrowserPresence opens the chat page in two tabs of a headless
// Chromium: each tab's member list shows both once the second has joined,
// and the remaining tab's drops the other when its tab closes.
func TestBrowserPresence(t *testing.T) {
	browser := findBrowser(t)
	base, _ := startChat(t)
	_, aliceCtx, newTab := startBrowser(t, browser, 30*time.Second)
	bobCtx, closeBob := newTab()

	const room = "browsers"
	joinPage(t, aliceCtx, base, "alice", room)
	require.NoError(t, chromedp.Do(aliceCtx, chromedp.Poll[chromedp.Void](membersShown("alice"))),
		"alice: the member list shows her alone")
	joinPage(t, bobCtx, base, "bob", room)
	require.NoError(t, chromedp.Do(bobCtx, chromedp.Poll[chromedp.Void](membersShown("alice", "bob"))),
		"bob: the member list shows both at once")
	require.NoError(t, chromedp.Do(aliceCtx,
		chromedp.Poll[chromedp.Void](membersShown("alice", "bob")),
		chromedp.Poll[chromedp.Void](hasMessage("bob joined", "presence")),
	), "alice: bob joins her list")
	self, err := chromedp.Run(bobCtx, chromedp.Evaluate[string](`document.querySelector("#members li.self").textContent`))
	require.NoError(t, err)
	assert.Equal(t, "bob", self, "bob: his own name is marked")

	// bob's tab closes, and his connection with it.
	closeBob()
	require.NoError(t, chromedp.Do(aliceCtx,
		chromedp.Poll[chromedp.Void](membersShown("alice")),
		chromedp.Poll[chromedp.Void](hasMessage("bob left", "presence")),
	), "alice: bob leaves her list")
}
