package portal

import (
	"regexp"

	"wabot/views"
)

// The store checks what people type and says what is wrong in English
// sentences, one per field: the JSON API's words, which programs may
// match. The portal shows them in its reader's language: each sentence a
// form can get is matched here and looked up in the message files; its
// numbers and quoted words carry over as written. A sentence not listed shows as the
// store wrote it.
var fieldSentences = []struct {
	re   *regexp.Regexp
	id   string
	args []string // the template's fields, one per group of re
}{
	{regexp.MustCompile(`^Enter a name for the workspace\.$`), "FieldNameWorkspace", nil},
	{regexp.MustCompile(`^Enter a name for the key\.$`), "FieldNameKey", nil},
	{regexp.MustCompile(`^Use one line of visible text: control characters, text-direction marks and zero-width characters are not allowed\.$`), "FieldOneLine", nil},
	{regexp.MustCompile(`^Use at most (\d+) characters\.$`), "FieldMaxChars", []string{"N"}},
	{regexp.MustCompile(`^Use at most (\d+) characters on one line\.$`), "FieldMaxCharsLine", []string{"N"}},
	{regexp.MustCompile(`^Use at most (\d+) characters; this text has (\d+)\.$`), "FieldMaxCharsHas", []string{"N", "M"}},
	{regexp.MustCompile(`^Choose 1 to (\d+)\.$`), "FieldOneTo", []string{"N"}},
	{regexp.MustCompile(`^Choose 0 \(no limit\) to (\d+)\.$`), "FieldZeroTo", []string{"N"}},
	{regexp.MustCompile(`^Choose 1 to (\d+) minutes \(a week\)\.$`), "FieldResumeMinutes", []string{"N"}},
	{regexp.MustCompile(`^Choose any message, or one of: (.+)\.$`), "FieldRuleKind", []string{"List"}},
	{regexp.MustCompile(`^Choose exact, contains, prefix or regex\.$`), "FieldRuleMatch", nil},
	{regexp.MustCompile(`^Enter what to match, or choose a kind of message to answer every one of\.$`), "FieldRulePattern", nil},
	{regexp.MustCompile(`^Enter the reply to send\.$`), "FieldRuleReply", nil},
	{regexp.MustCompile(`^At most (\d+) rules\.$`), "FieldMaxRules", []string{"N"}},
	{regexp.MustCompile(`^The regular expressions together are too complex \(at most (\d+) instructions once compiled\)\.$`), "FieldRegexTooComplex", []string{"N"}},
	{regexp.MustCompile(`^With this rule the regular expressions together compile to (\d+) instructions, at most (\d+) are allowed\. Simplify or remove some regular expressions\.$`), "FieldRegexRuleTooComplex", []string{"N", "M"}},
	{regexp.MustCompile(`^There is no upload with this id; upload the file first\.$`), "FieldNoUpload", nil},
	{regexp.MustCompile(`^Use image, video, audio, voice, document or sticker; leave it out to take it from the file's type\.$`), "FieldAttachmentKind", nil},
	{regexp.MustCompile(`^Use a file name of at most 255 bytes, without slashes\.$`), "FieldFileName", nil},
	{regexp.MustCompile(`^WhatsApp shows no text with audio, voice notes or stickers: leave the reply empty, or attach the file as a document\.$`), "FieldNoTextWithAudio", nil},
	{regexp.MustCompile(`^The URL is too long\.$`), "FieldURLTooLong", nil},
	{regexp.MustCompile(`^Enter an http:// or https:// URL without user name or password\.$`), "FieldURL", nil},
	{regexp.MustCompile(`^Enter the URL to send events to\.$`), "FieldEventsURL", nil},
	{regexp.MustCompile(`^Choose at least one event\.$`), "FieldOneEvent", nil},
	{regexp.MustCompile(`^Choose at least one scope\.$`), "FieldOneScope", nil},
	{regexp.MustCompile(`^Enter an email address\.$`), "FieldEmail", nil},
	{regexp.MustCompile(`^Choose owner or agent\.$`), "FieldRole", nil},
	{regexp.MustCompile(`^Enter the reply a customer gets when they ask for a person\.$`), "FieldHandoverReply", nil},
	{regexp.MustCompile(`^Write a question to put to the model\.$`), "FieldAITryQuestion", nil},
	{regexp.MustCompile(`^Use at most (\d+) keywords\.$`), "FieldMaxKeywords", []string{"N"}},
	{regexp.MustCompile(`^"(.*)" is too long: use at most (\d+) characters per keyword\.$`), "FieldKeywordTooLong", []string{"Q", "N"}},
	{regexp.MustCompile(`^"(.*)" has no letter or digit; a keyword is a word or a few words\.$`), "FieldKeywordNoLetter", []string{"Q"}},
	{regexp.MustCompile(`^Use 1 to 30 small letters, digits, _ or -\.$`), "FieldShortcut", nil},
	{regexp.MustCompile(`^Write the text to insert\.$`), "FieldQuickReplyBody", nil},
	{regexp.MustCompile(`^Choose a member of this workspace\.$`), "FieldMember", nil},
	// AI answers (tenant/ai.go and the pipeline's check of the host).
	{regexp.MustCompile(`^Enter the model provider's API address, such as (\S+)\.$`), "FieldAIBaseURLMissing", []string{"Example"}},
	{regexp.MustCompile(`^Enter an http:// or https:// URL without user name, password or query, such as (\S+)\.$`), "FieldAIBaseURL", []string{"Example"}},
	{regexp.MustCompile(`^Enter the model's name, such as (\S+)\.$`), "FieldAIModel", []string{"Example"}},
	{regexp.MustCompile(`^Paste the key alone, at most (\d+) characters, without spaces\.$`), "FieldAIKey", []string{"N"}},
	{regexp.MustCompile(`^The knowledge text is (\d+) KB; use at most (\d+) KB\.$`), "FieldAIKnowledgeSize", []string{"N", "M"}},
	{regexp.MustCompile(`^The knowledge must be plain text \(UTF-8\)\.$`), "FieldAIKnowledgeText", nil},
	{regexp.MustCompile(`^Choose 0 to 2\.$`), "FieldTemperature", nil},
	{regexp.MustCompile(`^Choose 1 to (\d+) characters\.$`), "FieldOneToChars", []string{"N"}},
	{regexp.MustCompile(`^Choose 0 to (\d+) messages\.$`), "FieldZeroToMessages", []string{"N"}},
	{regexp.MustCompile(`^Choose 1 to (\d+) seconds\.$`), "FieldOneToSeconds", []string{"N"}},
	{regexp.MustCompile(`^Choose 0 \(no budget\) or a number of tokens\.$`), "FieldTokenBudget", nil},
	{regexp.MustCompile(`^Choose handover or fallback\.$`), "FieldOnFailure", nil},
	{regexp.MustCompile(`^The model's host is not a public internet address; the operator can allow a model on this machine with (\w+)\.$`), "FieldAIHostNotPublic", []string{"Setting"}},
	// The API's own fields.
	{regexp.MustCompile(`^Use 1 to 200\.$`), "FieldLimit200", nil},
	{regexp.MustCompile(`^Use a whole number from 1 to (\d+)\.$`), "FieldWholeOneTo", []string{"N"}},
	{regexp.MustCompile(`^Use a whole number from 1\.$`), "FieldWholeFromOne", nil},
	{regexp.MustCompile(`^Use a chat id \(15551234567@s\.whatsapp\.net, 120363000000000000@g\.us\) or a number in international format \(\+15551234567\)\.$`), "FieldChat", nil},
	{regexp.MustCompile(`^Enter the owner's email address\.$`), "FieldOwnerEmail", nil},
	{regexp.MustCompile(`^Use the cursor of the previous page\.$`), "FieldCursor", nil},
	{regexp.MustCompile(`^Use \+ and the international number, digits only \(\+15551234567\), or a chat id such as 15551234567@s\.whatsapp\.net or 120363000000000000@g\.us\.$`), "FieldTo", nil},
	{regexp.MustCompile(`^Write the text to send\.$`), "FieldText", nil},
	{regexp.MustCompile(`^WhatsApp takes at most (\d+) characters; this text has (\d+)\.$`), "FieldTextTooLong", []string{"N", "M"}},
	{regexp.MustCompile(`^There is no upload with this id; upload the file with POST /api/v1/media first\.$`), "FieldNoUploadAPI", nil},
	{regexp.MustCompile(`^Give either upload_id or url, not both\.$`), "FieldUploadOrURL", nil},
	{regexp.MustCompile(`^Unknown field: leave it out\.$`), "FieldUnknown", nil},
	{regexp.MustCompile(`^Enter the phone number in international format, such as \+15550001111\.$`), "FieldPhone", nil},
}

// apiMessages are the 422 answers' headline sentences, as the store and
// the API write them (before sentence() capitalizes them).
var apiMessages = []struct {
	re *regexp.Regexp
	id string
}{
	{regexp.MustCompile(`^the bot configuration has errors$`), "APIBotErrors"},
	{regexp.MustCompile(`^the message has errors$`), "APIMessageErrors"},
	{regexp.MustCompile(`^the webhook subscription has errors$`), "APIWebhookErrors"},
	{regexp.MustCompile(`^the query has errors$`), "APIQueryErrors"},
	{regexp.MustCompile(`^a query parameter is not valid$`), "APIQueryParam"},
	{regexp.MustCompile(`^the upload has errors$`), "APIUploadErrors"},
	{regexp.MustCompile(`^a field has the wrong type$`), "APIFieldType"},
	{regexp.MustCompile(`^the body has a field this API does not know$`), "APIUnknownField"},
	{regexp.MustCompile(`^the contact has errors$`), "APIContactErrors"},
}

// apiMessage is a 422 answer's headline in l's language.
func apiMessage(l *views.Locale, s string) string {
	for _, m := range apiMessages {
		if m.re.MatchString(s) {
			return l.T(m.id)
		}
	}
	return s
}

// fieldText is a store's field sentence in l's language.
func fieldText(l *views.Locale, s string) string {
	for _, f := range fieldSentences {
		m := f.re.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		var kv []any
		for i, name := range f.args {
			kv = append(kv, name, m[i+1]) // numbers as the store wrote them
		}
		return l.T(f.id, kv...)
	}
	return s
}

// fieldTexts is a form's field errors in l's language.
func fieldTexts(l *views.Locale, fields map[string]string) map[string]string {
	if fields == nil {
		return nil
	}
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		out[k] = fieldText(l, v)
	}
	return out
}

// errorSentences are the portal's own refusals (rate limits, roles,
// sign-in), as error pages and flashes show them.
var errorSentences = []struct {
	re   *regexp.Regexp
	id   string
	args []string
}{
	{regexp.MustCompile(`^only the workspace's owners may open this; ask an owner$`), "ErrOwnerOnly", nil},
	{regexp.MustCompile(`^too many sign-in attempts; wait a minute and try again$`), "ErrTooManySignIns", nil},
	{regexp.MustCompile(`^too many live pages open; close some tabs and reload$`), "ErrTooManyStreams", nil},
	{regexp.MustCompile(`^this sign-in attempt is invalid or expired; start again from the sign-in page$`), "ErrBadState", nil},
	{regexp.MustCompile(`^the sign-in provider cannot be reached; try again shortly$`), "ErrProviderDown", nil},
	{regexp.MustCompile(`^too many pairing codes for this workspace; wait a minute and try again$`), "ErrPairTenantMinute", nil},
	{regexp.MustCompile(`^too many pairing codes for this workspace; wait (\d+) minutes and try again$`), "ErrPairTenant", []string{"N"}},
	{regexp.MustCompile(`^too many pairing codes for this phone number; wait a minute and try again$`), "ErrPairNumberMinute", nil},
	{regexp.MustCompile(`^too many pairing codes for this phone number; wait (\d+) minutes and try again$`), "ErrPairNumber", []string{"N"}},
	{regexp.MustCompile(`^too many saves of the bot configuration; try again in (\d+) s$`), "ErrTooManySaves", []string{"N"}},
	{regexp.MustCompile(`^WhatsApp did not answer in time; try again$`), "ErrWhatsAppSlow", nil},
	{regexp.MustCompile(`^you have no such workspace$`), "ErrNoSuchWorkspace", nil},
	{regexp.MustCompile(`^this message has no file$`), "ErrNoFile", nil},
	{regexp.MustCompile(`^The file is still being downloaded from WhatsApp; try again in a moment\.$`), "ErrFilePending", nil},
}

// errorText is one of the portal's refusals in l's language; any other
// message shows as written.
func errorText(l *views.Locale, s string) string {
	for _, f := range errorSentences {
		m := f.re.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		var kv []any
		for i, name := range f.args {
			kv = append(kv, name, m[i+1])
		}
		return l.T(f.id, kv...)
	}
	return s
}
