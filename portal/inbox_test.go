package portal_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"wabot/tenant"
)

const inboxChat = "15557770001@s.whatsapp.net"

// customerWrites stores a message from a contact as the pipeline does.
func customerWrites(t *testing.T, e *env, tenantID, chat, name, text string) int64 {
	t.Helper()
	id, _, err := e.app.Store().StoreInbound(context.Background(), tenantID, tenant.Inbound{
		Chat: chat, Sender: chat, SenderName: name, WAID: "W" + time.Now().Format("150405.000000000"), Kind: "text", Body: text, Status: tenant.MsgReceived,
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The list shows the chat with its name, unread count and the count in
// the title; opening it shows the thread and reads it.
func TestInboxListAndThread(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, id := e.tenantUser("inbox@example.com", "Inbox Shop")
	customerWrites(t, e, id, inboxChat, "Carla", "Do you deliver on Sundays?")
	customerWrites(t, e, id, inboxChat, "Carla", "hello?")
	r := b.get("/app/chats")
	if r.status != http.StatusOK || !strings.Contains(r.body, "<title>(1) Chats · wabot</title>") {
		t.Fatalf("list: %d, title missing\n%s", r.status, r.body)
	}
	for _, want := range []string{"Carla", "hello?", `data-testid="chat-unread"`, "+15557770001"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	if r := b.get("/app/chats?q=sundays"); !strings.Contains(r.body, "Carla") {
		t.Error("search by text does not find the chat")
	}
	if r := b.get("/app/chats?q=nobody"); strings.Contains(r.body, `data-testid="chat-row"`) {
		t.Error("a search for nobody lists a chat")
	}
	if r := b.get("/app/chats?filter=mine"); strings.Contains(r.body, `data-testid="chat-row"`) {
		t.Error("assigned to me lists an unassigned chat")
	}
	r = b.get("/app/chats/" + inboxChat)
	if r.status != http.StatusOK || !strings.Contains(r.body, "Do you deliver on Sundays?") || !strings.Contains(r.body, `data-testid="reply-form"`) {
		t.Fatalf("thread: %d\n%s", r.status, r.body)
	}
	if r := b.get("/app/chats"); !strings.Contains(r.body, "<title>Chats · wabot</title>") || strings.Contains(r.body, `data-testid="chat-unread"`) {
		t.Error("opening the chat did not read it")
	}
	// Assign to me, then the filter finds it; pause and resume the bot.
	if r := b.postForm("/app/chats/"+inboxChat+"/assign", url.Values{"to": {"me"}}); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="unassign"`) {
		t.Fatalf("assign: %d", r.status)
	}
	if r := b.get("/app/chats?filter=mine"); !strings.Contains(r.body, `data-testid="chat-row"`) {
		t.Error("assigned to me does not list the chat")
	}
	if r := b.postForm("/app/chats/"+inboxChat+"/pause", nil); !strings.Contains(r.body, `data-testid="resume-bot"`) {
		t.Fatal("pause: no Resume button")
	}
	if st, _ := e.app.Store().ChatStateOf(context.Background(), id, inboxChat); !st.BotPaused {
		t.Fatal("pause did not pause the bot")
	}
	if r := b.get("/app/chats?filter=paused"); !strings.Contains(r.body, "Bot paused") {
		t.Error("the paused filter does not list the chat")
	}
	if r := b.postForm("/app/chats/"+inboxChat+"/resume", nil); !strings.Contains(r.body, `data-testid="pause-bot"`) {
		t.Fatal("resume: no Pause button")
	}
	if r := b.postForm("/app/chats/"+inboxChat+"/contact", url.Values{"name": {"Carla Gómez"}, "note": {"VIP"}}); !strings.Contains(r.body, "Carla Gómez") {
		t.Fatal("contact name not shown")
	}
	r = b.postForm("/app/chats/"+inboxChat+"/contact", url.Values{"name": {strings.Repeat("x", 101)}, "note": {"kept"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-name"`) || !strings.Contains(r.body, "kept") {
		t.Fatalf("a long name: %d", r.status)
	}
}

// Replies are refused beside the box with the text kept; a good one is
// queued once with its author even when posted twice.
func TestInboxReply(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, id := e.tenantUser("reply@example.com", "Reply Shop")
	u, _ := e.app.Store().UserByEmail(context.Background(), "reply@example.com")
	customerWrites(t, e, id, inboxChat, "Dan", "Is it in stock?")
	path := "/app/chats/" + inboxChat + "/reply"

	r := b.postForm(path, url.Values{"text": {"   "}, "key": {"inbox-AAAA"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="reply-error"`) {
		t.Fatalf("empty reply: %d", r.status)
	}
	long := strings.Repeat("a", tenant.MaxTextChars+1)
	r = b.postForm(path, url.Values{"text": {long}, "key": {"inbox-AAAA"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "at most 65536 characters") || !strings.Contains(r.body, long) {
		t.Fatalf("too long: %d (error shown and text kept?)", r.status)
	}
	for range 2 { // a double submit of the same form
		r = b.postForm(path, url.Values{"text": {"Yes, 3 left."}, "key": {"inbox-BBBB"}})
		if r.status != http.StatusOK || !strings.HasSuffix(r.url, "/app/chats/"+inboxChat) {
			t.Fatalf("reply: %d at %s", r.status, r.url)
		}
	}
	msgs, _, err := e.app.Store().Thread(context.Background(), id, inboxChat, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	var sent []tenant.ThreadMessage
	for _, m := range msgs {
		if m.Direction == "out" && m.Body == "Yes, 3 left." {
			sent = append(sent, m)
		}
	}
	if len(sent) != 1 || sent[0].AuthorID != u.ID || sent[0].Source != "api" {
		t.Fatalf("queued %d replies (%+v); want one by the user", len(sent), sent)
	}
	if !strings.Contains(r.body, `data-testid="bubble-by">reply@example.com`) {
		t.Error("the thread does not name the reply's author")
	}
	if st, _ := e.app.Store().ChatStateOf(context.Background(), id, inboxChat); st.LastHumanAt.IsZero() {
		t.Error("the human reply was not noted")
	}
	// A cross-site form is refused before anything is sent.
	r = b.do(http.MethodPost, path, strings.NewReader(url.Values{"text": {"evil"}}.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if r.status != http.StatusForbidden {
		t.Fatalf("cross-site reply: %d", r.status)
	}
}

// Another workspace's chat is not found on every inbox route, as is a
// chat id that is not a JID.
func TestInboxOtherTenantsChatIsNotFound(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	a, idA := e.tenantUser("a@example.com", "A")
	b, _ := e.tenantUser("b@example.com", "B")
	customerWrites(t, e, idA, inboxChat, "Eve", "secret order")
	if r := a.get("/app/chats/" + inboxChat); r.status != http.StatusOK {
		t.Fatalf("A's own chat: %d", r.status)
	}
	if r := b.get("/app/chats/" + inboxChat); r.status != http.StatusNotFound || strings.Contains(r.body, "secret order") {
		t.Fatalf("B opens A's chat: %d", r.status)
	}
	for _, action := range []string{"reply", "pause", "resume", "assign", "contact"} {
		if r := b.postForm("/app/chats/"+inboxChat+"/"+action, url.Values{"text": {"hi"}, "to": {"me"}}); r.status != http.StatusNotFound {
			t.Errorf("B posts %s to A's chat: %d", action, r.status)
		}
	}
	if st, _ := e.app.Store().ChatStateOf(context.Background(), idA, inboxChat); st.BotPaused {
		t.Fatal("B paused A's chat")
	}
	if r := b.get("/app/chats"); strings.Contains(r.body, "secret order") {
		t.Fatal("B's list shows A's chat")
	}
	for _, bad := range []string{"..%2F..%2Fetc%2Fpasswd", "hello", "15557770001@example.com", "%2Ftmp"} {
		if r := a.get("/app/chats/" + bad); r.status != http.StatusNotFound {
			t.Errorf("chat %q: %d", bad, r.status)
		}
	}
}

// Quick replies are added, refused when malformed, offered in the reply
// box, inserted without script, and removed.
func TestInboxQuickReplies(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, id := e.tenantUser("quick@example.com", "Quick Shop")
	customerWrites(t, e, id, inboxChat, "Fay", "When are you open?")
	if r := b.postForm("/app/settings/quick-replies", url.Values{"shortcut": {"Bad Name"}, "body": {"x"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-shortcut"`) {
		t.Fatalf("a bad shortcut: %d", r.status)
	}
	if r := b.postForm("/app/settings/quick-replies", url.Values{"shortcut": {"hours"}, "body": {"9 to 5, Monday to Friday."}}); r.status != http.StatusOK || !strings.Contains(r.body, "/hours") {
		t.Fatalf("save: %d", r.status)
	}
	qs, _ := e.app.Store().QuickReplies(context.Background(), id)
	if len(qs) != 1 {
		t.Fatalf("%d quick replies", len(qs))
	}
	r := b.get("/app/chats/" + inboxChat)
	if !strings.Contains(r.body, `data-shortcut="hours"`) {
		t.Fatal("the reply box does not offer the quick reply")
	}
	r = b.postForm("/app/chats/"+inboxChat+"/reply", url.Values{"text": {"Hi! "}, "op": {"insert"}, "quick": {qs[0].ID}, "key": {"inbox-CCCC"}})
	if r.status != http.StatusOK || !strings.Contains(r.body, "Hi! 9 to 5, Monday to Friday.</textarea>") {
		t.Fatalf("insert: %d", r.status)
	}
	if msgs, _, _ := e.app.Store().Thread(context.Background(), id, inboxChat, "", 50); len(msgs) != 1 {
		t.Fatal("inserting a quick reply sent something")
	}
	other, _ := e.tenantUser("other@example.com", "Other")
	if r := other.postForm("/app/settings/quick-replies/"+qs[0].ID+"/delete", nil); r.status != http.StatusNotFound {
		t.Fatalf("another workspace removes it: %d", r.status)
	}
	if r := b.postForm("/app/settings/quick-replies/"+qs[0].ID+"/delete", nil); !strings.Contains(r.body, `data-testid="quick-empty"`) {
		t.Fatalf("remove: %d", r.status)
	}
}

// The inbox's stream says "changed" when a message arrives.
func TestInboxStreamSignalsNewMessages(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, id := e.tenantUser("live@example.com", "Live Shop")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mark, err := e.app.Store().InboxMark(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/app/chats/events?mark="+url.QueryEscape(mark), nil)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	customerWrites(t, e, id, inboxChat, "Gus", "anyone there?")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "event: changed" {
			return
		}
	}
	t.Fatalf("the stream ended without a changed event: %v", sc.Err())
}

// A thread shows media as the log does, and marks a message the bot
// skipped because a person had taken over.
func TestInboxThreadShowsMediaAndSkips(t *testing.T) {
	e := newEnv(t, map[string]string{"WABOT_APPROVAL": "auto"})
	b, id := e.tenantUser("media@example.com", "Media Shop")
	const chat = "15550002222@s.whatsapp.net" // logMedia's contact
	logMedia(t, e.app, id, "", tenant.MessageMedia{Kind: tenant.MediaImage, MIME: "image/png"}, testPNG(t, 40, 30))
	logMedia(t, e.app, id, "", tenant.MessageMedia{Kind: tenant.MediaLocation, Latitude: 52.52, Longitude: 13.405, PlaceName: "Depot"}, nil)
	if _, _, err := e.app.Store().StoreInbound(context.Background(), id, tenant.Inbound{Chat: chat, Sender: chat, WAID: "SKIP1", Kind: "text",
		Body: "still there?", Status: tenant.MsgIgnored, Error: tenant.ReasonBotPaused + ": a person is answering"}); err != nil {
		t.Fatal(err)
	}
	r := b.get("/app/chats/" + chat)
	for _, want := range []string{`data-testid="media-image"`, `data-testid="media-location"`, "Depot", `data-testid="bubble-skipped"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("thread lacks %s", want)
		}
	}
	if strings.Count(r.body, `data-testid="bubble-skipped"`) != 1 {
		t.Error("more than the skipped message is marked skipped")
	}
}
