package bot

import (
	"context"
	"slices"
	"testing"

	"wabot/tenant"
)

// With read receipts on, reading a chat sends WhatsApp a read receipt for
// the customer's messages; with them off, none.
func TestReadReceiptsFollowTheTenantsChoice(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules()
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	first, _ := ann.Send("one")
	second, _ := ann.Send("two")
	chat := ann.JID().String()
	ms := r.waitLogs(id, "both messages logged", func(ms []tenant.Message) bool { return count(ms, "in", "") == 2 })

	r.bot.ReadReceipts(id, chat, ms) // off: nothing is sent
	cfg.ReadReceipts = true
	if _, err := r.bot.SaveConfig(context.Background(), id, cfg); err != nil {
		t.Fatal(err)
	}
	third, _ := ann.Send("three")
	ms = r.waitLogs(id, "the third message logged", func(ms []tenant.Message) bool { return count(ms, "in", "") == 3 })
	var last []tenant.Message
	for _, m := range ms {
		if m.WAID == third {
			last = append(last, m)
		}
	}
	r.bot.ReadReceipts(id, chat, last)
	waitFor(t, "the read receipt for the third message", func() bool { return slices.Contains(ann.ReadByLinkedDevice(), third) })
	if got := ann.ReadByLinkedDevice(); slices.Contains(got, first) || slices.Contains(got, second) {
		t.Fatalf("receipts %v were sent while read receipts were off", got)
	}
}
