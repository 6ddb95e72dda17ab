package views

// SignInView is the sign-in page.
type SignInView struct {
	Providers []ProviderLink
	Next      string
	Demo      bool
}

// ProviderLink is one "Sign in with ..." button.
type ProviderLink struct {
	Name  string // "google", "oidc"
	Label string
	URL   string
}

// CreateTenantView is the form a signed-in user without a tenant sees.
type CreateTenantView struct {
	Chrome Chrome
	Name   string
	Error  string
}

// TenantView is a tenant as its pages show it.
type TenantView struct {
	ID          string
	Name        string
	Status      string // PENDING, ACTIVE, SUSPENDED, ERROR
	StatusLabel string
	StatusLine  string
}

// SessionView is a tenant's WhatsApp link as people read it.
type SessionView struct {
	State          string // QR_PENDING ... LOGGED_OUT
	StateLabel     string // "Waiting for a scan"
	StateLine      string // one plain-language sentence
	QRDataURI      string
	QRExpiresAt    string // RFC 3339, for the countdown
	QRSecondsLeft  int
	PairCode       string
	Number         string // "+15550001111"
	PushName       string
	ConnectedSince string
	LastSeen       string // "12 s ago"
	WorkerStatus   string
	Restarts       int
	ErrorCode      string
	LastError      string
	// ErrorDetail is the session's own English account of the error when
	// LastError is its translation: what to quote to an operator.
	ErrorDetail string
	Attempts    int
}

// MessageView is one row of the message log.
type MessageView struct {
	ID          int64
	Direction   string // "in" or "out"
	Chat        string
	Sender      string
	Body        string
	Cut         bool   // Body is the start of a longer one
	URL         string // the message's own page
	Kind        string
	Status      string
	StatusLabel string
	Error       string
	At          string
	AtISO       string
	Media       *MediaView // nil for a text message
	Origin      string     // what wrote an outgoing message: "rule 2", "welcome", …
}

// MediaView is a message's media as the log shows it. Only what the
// portal may show inline (raster images, audio, video) has Inline set;
// everything else is a download link, so nothing a customer sends runs
// as script in the portal's page.
type MediaView struct {
	Kind      string // image, sticker, audio, voice, video, document, location, contact
	KindLabel string // "Image", "Voice note"
	Status    string // pending, stored, failed, none
	Error     string // why the download failed
	URL       string // the file, /app/media/{id}; empty until stored
	Inline    bool   // an <img>, <audio> or <video> may show the file
	FileName  string // the sender's name or one made up from the kind
	Size      string // "1.2 MB"
	Caption   string // shown when it differs from the message's text
	Width     int
	Height    int
	// A location: the map link and what the sender called the place.
	MapURL  string
	Place   string
	Address string
	Coords  string // "52.520008, 13.404954"
	// A contact card.
	ContactName string
	VCard       string
}

// MediaUsageView is the disk a workspace's files take, against its quota.
type MediaUsageView struct {
	Bytes   string // "12.5 MB"
	Files   int
	Quota   string // "1 GB"; empty when unknown
	Percent int    // 0..100 of the quota
}

// DashboardView is /app.
type DashboardView struct {
	Chrome   Chrome
	Tenant   TenantView
	Session  SessionView
	Messages []MessageView
	Media    *MediaUsageView // nil when the portal serves no media
	// AI is this month's use of the model; nil when AI answers are off
	// and unused this month.
	AI *AIUsageView
}

// LinkView is /app/link.
type LinkView struct {
	Chrome Chrome
	Tenant TenantView
	Panel  LinkPanelView
}

// LinkPanelView is the part of the link page that updates live.
type LinkPanelView struct {
	Session   SessionView
	TenantID  string
	Demo      bool   // show "Simulate scan"
	Version   string // changes whenever the panel would render differently
	StreamURL string
}

// LogsView is /app/logs.
type LogsView struct {
	Chrome    Chrome
	Messages  []MessageView
	Query     string
	Direction string
	Status    string
	Statuses  []Choice // the status filter's options
	NextURL   string
	FirstURL  string
	IsFirst   bool
	// BodiesWithheld: the workspace awaits approval, so messages are
	// logged without their text.
	BodiesWithheld bool
}

// MessagePageView is /app/logs/:id, one message whole.
type MessagePageView struct {
	Chrome  Chrome
	Message MessageView
}

// RuleForm is one rule row of the bot form.
type RuleForm struct {
	Kind    string // "" any message, or one of tenant.RuleKinds
	Match   string
	Pattern string
	Reply   string
	// The file the rule answers with: an upload id (its SHA-256), its
	// kind and name; empty for none.
	AttachmentID   string
	AttachmentKind string
	AttachmentName string
}

// BotView is /app/bot.
type BotView struct {
	Chrome             Chrome
	Enabled            bool
	ReplyInGroups      bool
	ReadReceipts       bool
	Rules              []RuleForm
	WelcomeReply       string
	FallbackReply      string
	BusyReply          string
	WebhookURL         string
	WebhookSecret      string
	QueuePerChat       int
	PerChatPerMinute   int
	PerTenantPerMinute int
	// The hand-over to a person: keywords comma-separated as typed.
	HandoverKeywords      string
	HandoverReply         string
	HandoverResumeMinutes int
	AI                    AIForm
	Errors                map[string]string
}

// AIForm is the bot form's AI answers section. It never holds the
// provider's API key: the key's field is always rendered empty.
type AIForm struct {
	Enabled   bool
	BaseURL   string
	Model     string
	HasAPIKey bool // a key is stored: the field's placeholder says so
	ClearKey  bool // "remove the saved key" was ticked
	// KeyNotSaved: the form came back (an error, a rule added) with a
	// key typed in it, which is not shown again: it must be typed anew.
	KeyNotSaved          bool
	SystemPrompt         string
	Knowledge            string
	Temperature          string // the number fields: as saved, or as sent back
	MaxAnswerChars       string
	HistoryMessages      string
	TimeoutSeconds       string
	MonthlyTokenBudget   string
	AnswersPerChatPerDay string
	OnFailure            string // "handover" or "fallback"
	Usage                AIUsageView
	// DemoModelURL is the demo build's fake model, to point the section
	// at without a provider account; empty in a production build.
	DemoModelURL string
	// TryQuestion is the test question as typed; Trial, after "Ask the
	// model", what the model made of it.
	TryQuestion string
	Trial       *AITrialView
}

// AITrialView is what the model made of a test question.
type AITrialView struct {
	Answer   string
	HandOver bool
	Failure  string // in English, as the log has it
	Tokens   string // "42 tokens"
}

// AIUsageView is a workspace's use of its model this month.
type AIUsageView struct {
	Month     string // "2026-12"
	Tokens    string // "12,345 of 500,000 tokens", or without the budget when there is none
	Answers   int
	Handovers int
	Failures  int
	// The month's latest failure: the pipeline's own English account of
	// it ("the model's provider answered HTTP 401") and when; empty when
	// there was none.
	LastFailure    string
	LastFailureAt  string
	LastFailureISO string
}

// AdminTenantRow is one tenant in the admin table.
type AdminTenantRow struct {
	ID           string
	Name         string
	Owner        string
	Status       string
	StatusLabel  string // Status in words
	State        string
	StateLabel   string
	Number       string
	LastSeen     string
	Restarts     int
	LastError    string
	WorkerStatus string
	MediaBytes   string // disk its media files take, "0 bytes" when none
	MediaFiles   int
	AITokens     string // the model's tokens this month, "" when none
	Actions      []AdminAction
}

// AdminAction is a button of a tenant's row: approve, suspend, resume,
// reset or restart, its URL asking for confirmation.
type AdminAction struct {
	Name  string
	Label string
	URL   string
}

// AuditRow is one admin action; the URLs filter the log by its tenant
// and by its actor.
type AuditRow struct {
	At        string
	Actor     string
	ActorURL  string
	Action    string
	Tenant    string // the tenant's name, or its id when it has none
	TenantID  string
	TenantURL string
	Detail    string
}

// FilterLink is a link that filters a list, with how many rows it shows.
type FilterLink struct {
	Label  string
	Value  string
	Count  int
	URL    string
	Active bool
}

// SortLink is a column heading that sorts by it; Active says the list is
// sorted by it now, Desc in which direction.
type SortLink struct {
	Label  string
	URL    string
	Active bool
	Desc   bool
}

// Param is a hidden form field that carries the rest of a page's state.
type Param struct {
	Name  string
	Value string
}

// Pager moves through a paged list: Showing says which rows ("Showing
// 51–100 of 523"); Prev and Next are empty at either end.
type Pager struct {
	Showing string
	Prev    string
	Next    string
	Pages   []PageLink
}

// PageLink is one numbered page; an empty URL is a gap ("…").
type PageLink struct {
	Label   string
	URL     string
	Current bool
}

// AdminView is /admin: one page of tenants, searched, filtered and
// sorted, and one page of the audit log.
type AdminView struct {
	Chrome      Chrome
	Tenants     []AdminTenantRow
	Search      string
	Keep        []Param // the search form's hidden fields
	Clear       string  // URL without search, filters or sort; empty when none is set
	States      []FilterLink
	Statuses    []FilterLink
	SortName    SortLink // the Tenant column
	SortState   SortLink // the WhatsApp column
	SortSeen    SortLink // the Last seen column
	Pager       Pager
	Audit       []AuditRow
	AuditTenant string
	AuditActor  string
	AuditKeep   []Param
	AuditClear  string
	AuditPager  Pager
}

// ConfirmView asks before a destructive action.
type ConfirmView struct {
	Chrome  Chrome
	Title   string
	Message string
	Action  string // URL the form posts to
	Button  string
	Cancel  string
	Danger  bool
}

// Choice is one option of a select: the value sent and the words shown.
type Choice struct {
	Value string
	Label string
}

// ChatsView is the conversations page: the list, and the open chat's
// thread when one is open (two views on a phone, side by side wider).
type ChatsView struct {
	Chrome    Chrome
	Chats     []ChatRow
	Search    string
	Filter    string // "", "unread", "mine" or "paused"
	Filters   []FilterLink
	NextURL   string // the list's older page; "" at the end
	StreamURL string // the live stream; changed events make the page re-read itself
	Mark      string // what the page shows, as the stream compares it
	Thread    *ThreadView
	// QuickRepliesURL manages the workspace's quick replies.
	QuickRepliesURL string
}

// ChatRow is one conversation of the list.
type ChatRow struct {
	Chat     string
	URL      string
	Name     string // the contact's name, else the number
	Phone    string
	Preview  string // the last message, cut
	LastOut  bool   // the last message was sent, not received
	At       string
	AtISO    string
	Unread   int
	Answerer string // "Bot", "Bot paused", "Waiting for a person"
	Assigned string // the assignee's name, "" when unassigned
	Open     bool   // the chat the page shows
}

// ThreadView is an open conversation: its messages as bubbles, the reply
// box and the chat's actions.
type ThreadView struct {
	Chat      string
	Base      string // /app/chats/{chat}: the actions post below it
	Name      string
	Phone     string
	Messages  []BubbleView
	OlderURL  string
	NewestURL string // set when an older page is shown
	BotPaused bool
	Waiting   bool
	// ByModel: the AI model (or the pipeline, when the model could not
	// answer) handed the chat over, not a keyword or a person.
	ByModel     bool
	AssignedTo  string // the assignee's name, "" when unassigned
	AssignedMe  bool
	Members     []MemberChoice // whom the chat can be assigned to
	ContactName string
	Note        string
	ContactErrs map[string]string
	// The reply box: the text is kept when it comes back with an error.
	ReplyText    string
	ReplyError   string
	ReplyKey     string // one per render: a double submit sends once
	QuickReplies []QuickReplyView
}

// BubbleView is one message of a thread.
type BubbleView struct {
	ID        int64
	Direction string // "in" or "out"
	Body      string
	Cut       bool
	URL       string // the message's page in the log
	Kind      string
	At        string
	AtISO     string
	Mark      string // out: queued, sent, delivered, read, failed
	MarkLabel string
	By        string // out: "bot · rule 2", a person's name, "API"
	Skipped   bool   // in: left unanswered because a person has taken over
	Error     string
	Media     *MediaView
}

// QuickReplyView is a saved snippet.
type QuickReplyView struct {
	ID       string
	Shortcut string
	Body     string
}

// QuickRepliesView is the page that manages quick replies.
type QuickRepliesView struct {
	Chrome   Chrome
	Replies  []QuickReplyView
	Shortcut string
	Body     string
	Errors   map[string]string
}

// MemberChoice is a member in a thread's assign control.
type MemberChoice struct {
	ID      string
	Name    string
	Current bool // the chat is assigned to them
}
