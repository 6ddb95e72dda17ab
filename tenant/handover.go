package tenant

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Hand-over between the bot and people: a keyword from the customer
// pauses the bot in the chat with a reply, a person replying takes over,
// and the bot resumes by itself once the chat has been quiet long enough.

// ReasonBotPaused starts the reason logged for every message the bot did
// not answer because a person has the chat, so the log and the thread can
// show it as such.
const ReasonBotPaused = "the bot is paused in this chat"

// validate adds the hand-over settings' problems to f, by field name.
func (h *Handover) validate(f map[string]string) {
	switch {
	case len(h.Keywords) > MaxKeywords:
		f["handover.keywords"] = fmt.Sprintf("Use at most %d keywords.", MaxKeywords)
	default:
		for _, k := range h.Keywords {
			if utf8.RuneCountInString(k) > MaxKeywordLength {
				f["handover.keywords"] = fmt.Sprintf("%q is too long: use at most %d characters per keyword.", cutUTF8(k, 60), MaxKeywordLength)
				break
			}
			if !strings.ContainsFunc(k, isWordRune) {
				f["handover.keywords"] = fmt.Sprintf("%q has no letter or digit; a keyword is a word or a few words.", k)
				break
			}
		}
	}
	switch {
	case utf8.RuneCountInString(h.Reply) > MaxReplyLength:
		f["handover.reply"] = fmt.Sprintf("Use at most %d characters.", MaxReplyLength)
	case len(h.Keywords) > 0 && strings.TrimSpace(h.Reply) == "":
		f["handover.reply"] = "Enter the reply a customer gets when they ask for a person."
	}
	if m := h.ResumeAfterMinutes; m < 0 || m > MaxResumeMinutes {
		f["handover.resume_after_minutes"] = fmt.Sprintf("Choose 1 to %d minutes (a week).", MaxResumeMinutes)
	}
}

// ResumeAfter is how many minutes a paused chat stays quiet before the
// bot resumes there.
func (h *Handover) ResumeAfter() int {
	if h.ResumeAfterMinutes == 0 {
		return DefaultBotConfig().Handover.ResumeAfterMinutes
	}
	return h.ResumeAfterMinutes
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// words lower-cases s and makes every run of white space one space, so
// "Talk  to a\nHuman" matches the keyword "talk to a human".
func words(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }

// AsksForPerson reports whether text (a message's text or caption) holds
// one of the keywords as a whole word or phrase, ignoring case: a letter
// or digit may not touch it on either side. Only the first MatchWindow
// bytes are looked at, as the rules do.
func (h *Handover) AsksForPerson(text string) bool {
	if len(h.Keywords) == 0 {
		return false
	}
	msg := words(cutUTF8(text, MatchWindow))
	for _, k := range h.Keywords {
		k = words(k)
		if k == "" {
			continue
		}
		for from := 0; from < len(msg); {
			i := strings.Index(msg[from:], k)
			if i < 0 {
				break
			}
			start, end := from+i, from+i+len(k)
			before, _ := utf8.DecodeLastRuneInString(msg[:start])
			after, _ := utf8.DecodeRuneInString(msg[end:])
			if (start == 0 || !isWordRune(before)) && (end == len(msg) || !isWordRune(after)) {
				return true
			}
			_, size := utf8.DecodeRuneInString(msg[start:])
			from = start + size
		}
	}
	return false
}

// ensureChatTx makes sure the chat has a row in tx.
func ensureChatTx(ctx context.Context, tx *sql.Tx, tenantID, chat string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO chats (tenant_id, chat, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (tenant_id, chat) DO NOTHING`, tenantID, chat, now)
	return err
}

// HandOver pauses the bot in reply's chat (by PausedByKeyword or
// PausedByModel, the customer waiting for a person) and logs the hand-over reply, after the
// chat's welcome if it never had one, as LogReplies does, all in one
// transaction: after a crash the chat is either paused with the reply
// logged (and sent by recovery) or neither.
func (s *Store) HandOver(ctx context.Context, tenantID, by string, welcome *Reply, reply Reply, decide func(Reply) Reply) ([]Reply, error) {
	now := ms(s.now())
	var written []Reply
	err := s.fencedTx(ctx, func(tx *sql.Tx) error {
		if err := ensureChatTx(ctx, tx, tenantID, reply.Chat, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE chats SET bot_paused = 1, paused_at = ?, paused_by = ?, waiting = 1, updated_at = ?
			WHERE tenant_id = ? AND chat = ?`, now, by, now, tenantID, reply.Chat); err != nil {
			return err
		}
		var err error
		written, err = logRepliesTx(ctx, tx, tenantID, welcome, []Reply{reply}, decide, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("handing a chat over to a person: %w", err)
	}
	return written, nil
}

// NoteHumanReply records that a person (userID) replied in a chat: the
// idle time before the bot resumes counts from now, nobody is waiting any
// more, and a chat where the bot was not paused is paused by that person,
// who has taken over.
func (s *Store) NoteHumanReply(ctx context.Context, tenantID, chat, userID string) error {
	now := ms(s.now())
	// The SET expressions read the row as it was before the update.
	err := s.upsertChat(ctx, tenantID, chat, `last_human_at = ?, waiting = 0,
		paused_at = CASE WHEN bot_paused = 1 THEN paused_at ELSE ? END,
		paused_by = CASE WHEN bot_paused = 1 THEN paused_by ELSE ? END,
		bot_paused = 1`, now, now, userID)
	if err != nil {
		return fmt.Errorf("noting a person's reply in a chat: %w", err)
	}
	return nil
}

// ResumeIdleChats lets the bot answer again in the tenant's paused chats
// where neither a person's last reply nor the pause is more recent than
// idle, in one statement, and returns how many it resumed.
func (s *Store) ResumeIdleChats(ctx context.Context, tenantID string, idle time.Duration) (int64, error) {
	now := s.now()
	cutoff := ms(now.Add(-idle))
	res, err := s.db.write.ExecContext(ctx, `UPDATE chats SET bot_paused = 0, paused_at = NULL, paused_by = '', waiting = 0, updated_at = ?
		WHERE tenant_id = ? AND bot_paused = 1 AND COALESCE(last_human_at, 0) < ? AND COALESCE(paused_at, 0) < ?`,
		ms(now), tenantID, cutoff, cutoff)
	if err != nil {
		return 0, fmt.Errorf("resuming the bot in idle chats: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("resuming the bot in idle chats: %w", err)
	}
	return n, nil
}
