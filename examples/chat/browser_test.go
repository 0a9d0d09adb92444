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

// TestBrowserChat drives the chat page in two tabs of a headless Chromium:
// both join one room through the page's form, a message typed in one tab
// shows up in the other, and when the server shuts down both pages show
// that they lost the connection.
func TestBrowserChat(t *testing.T) {
	browser := findBrowser(t)
	base, stop := startChat(t)

	// One deadline for everything the browser does. The allocator is made
	// from it, so the browser dies with it at the latest.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
	aliceCtx, cancelAlice := chromedp.NewContext(allocCtx)
	var cancelBob context.CancelFunc = func() {}
	t.Cleanup(func() {
		cancelBob()   // closes bob's tab
		cancelAlice() // the first tab: ends the browser
		cancelAlloc() // waits until the browser process has exited
		cancel()
		if t.Failed() {
			t.Logf("browser output:\n%s", output.String())
		}
	})
	// The first Do starts the browser; bob's tab is a second tab in it.
	require.NoError(t, chromedp.Do(aliceCtx), "starting %s", browser)
	bobCtx, cb := chromedp.NewContext(aliceCtx)
	cancelBob = cb

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
