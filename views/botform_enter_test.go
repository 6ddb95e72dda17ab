package views_test

import (
	"testing"

	"wabot/views"
)

// Pressing Enter in a text field submits the form with its default
// button: the first submit button in tree order (HTML's implicit
// submission). On the Bot page that is Save, never a rule's ✕ (remove:0),
// ↓ (down:0) or "Add rule", whatever the number of rules.
func TestBotFormEnterSavesNotARuleAction(t *testing.T) {
	for _, n := range []int{0, 1, 2} {
		rules := make([]views.RuleForm, n)
		for i := range rules {
			rules[i] = views.RuleForm{Match: "contains", Pattern: "p", Reply: "r"}
		}
		doc := render(t, views.BotPage(views.BotView{Rules: rules, AI: views.AIForm{Enabled: true}}))
		first := doc.Find(`form[data-testid="bot-form"] button[type="submit"]`).First()
		if op := first.AttrOr("value", ""); op != "save" {
			t.Errorf("with %d rules, Enter in the test question (or any text field) submits op=%q, want save", n, op)
		}
	}
}
