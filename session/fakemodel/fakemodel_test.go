package fakemodel

import "testing"

func demoRequest(knowledge, question string) Request {
	return Request{Tools: []string{"hand_over_to_person"}, Messages: []Message{
		{Role: "system", Content: "Answer from:\n<knowledge>\n" + knowledge + "\n</knowledge>"},
		{Role: "user", Content: "earlier question about repairs"},
		{Role: "user", Content: question},
	}}
}

// The demo answers with the knowledge's line sharing the most words with
// the last message, and hands over when none does or a person is asked for.
func TestDemoAnswersFromTheKnowledge(t *testing.T) {
	knowledge := "Opening hours: 9 to 17, Monday to Saturday.\nRepairs cost 20 EUR and take a day.\nWe rent city bikes for 15 EUR a day."
	for _, tc := range []struct{ question, text, tool string }{
		{"What are your opening hours?", "Opening hours: 9 to 17, Monday to Saturday.", ""},
		{"How much do repairs cost?", "Repairs cost 20 EUR and take a day.", ""},
		{"Can I rent a bike for a day?", "We rent city bikes for 15 EUR a day.", ""},
		{"Do you repair tyres?", "Repairs cost 20 EUR and take a day.", ""},
		{"Do you sell scooters?", "", "hand_over_to_person"},
		{"I want to talk to a person about repairs", "", "hand_over_to_person"},
	} {
		a := Demo(demoRequest(knowledge, tc.question))
		if a.Text != tc.text || a.ToolCall != tc.tool {
			t.Errorf("%q: answered %q, tool %q; want %q, tool %q", tc.question, a.Text, a.ToolCall, tc.text, tc.tool)
		}
	}
	if a := Demo(Request{Messages: []Message{{Role: "user", Content: "hours?"}}}); a.ToolCall != "" || a.Text == "" {
		t.Errorf("without tools or knowledge: %+v, want a text saying a person will answer", a)
	}
}
