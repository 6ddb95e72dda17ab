// Package fakemodel is an OpenAI-compatible chat-completions endpoint for
// tests and the demo build: it records every request and answers by a
// script. Its default script, Demo, answers deterministically from the
// knowledge in the prompt, and hands over when that holds nothing on the
// question. Only tests and the fakewa build import it.
package fakemodel

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Request is a chat-completions request as the fake received it.
type Request struct {
	Header      http.Header
	Model       string
	Messages    []Message
	Tools       []string // the names of the functions offered
	Temperature *float64
	MaxTokens   int64
}

// Message is one message of a request's conversation.
type Message struct {
	Role    string
	Content string
}

// System returns the request's system message.
func (r Request) System() string {
	for _, m := range r.Messages {
		if m.Role == "system" {
			return m.Content
		}
	}
	return ""
}

// Last returns the request's last message: the one to answer.
func (r Request) Last() Message {
	if len(r.Messages) == 0 {
		return Message{}
	}
	return r.Messages[len(r.Messages)-1]
}

// Answer is what the script answers a request with.
type Answer struct {
	Text     string
	ToolCall string // a function to call instead of (or with) the text
	ToolArgs string // its arguments, JSON
	// Status, when not 0, answers with that HTTP status and an error.
	Status int
	// Delay holds the answer back; a request given up before is not
	// answered.
	Delay time.Duration
	// Tokens is the usage reported; 0 counts about one per 4 bytes of
	// the prompt and the answer.
	Tokens int64
	// NoUsage leaves the usage out, as some local servers do.
	NoUsage bool
}

// maxKept is how many requests a Server keeps: the newest.
const maxKept = 1000

// Server answers POST …/chat/completions.
type Server struct {
	script func(Request) Answer

	mu       sync.Mutex
	requests []Request
}

// New returns a fake answering by script; nil is Demo.
func New(script func(Request) Answer) *Server {
	if script == nil {
		script = Demo
	}
	return &Server{script: script}
}

// Requests returns the requests received so far (the newest 500 to
// 1000 of them), oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// wire types: the parts of the OpenAI format the fake reads and writes.
type wireRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
	Temperature *float64 `json:"temperature"`
	MaxTokens   int64    `json:"max_tokens"`
}

// content reads a message's content: a string, or an array of text parts.
func content(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	json.Unmarshal(raw, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	var in wireRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20)).Decode(&in); err != nil {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	req := Request{Header: r.Header.Clone(), Model: in.Model, Temperature: in.Temperature, MaxTokens: in.MaxTokens}
	for _, m := range in.Messages {
		req.Messages = append(req.Messages, Message{Role: m.Role, Content: content(m.Content)})
	}
	for _, t := range in.Tools {
		req.Tools = append(req.Tools, t.Function.Name)
	}
	s.mu.Lock()
	if len(s.requests) == maxKept { // the demo build runs for days
		s.requests = append(s.requests[:0], s.requests[maxKept/2:]...)
	}
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	a := s.script(req)
	if a.Delay > 0 {
		select {
		case <-time.After(a.Delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if a.Status != 0 {
		w.WriteHeader(a.Status)
		fmt.Fprintf(w, `{"error":{"message":"scripted failure","type":"server_error"}}`)
		return
	}
	tokens := a.Tokens
	if tokens == 0 {
		n := len(a.Text) + len(a.ToolArgs)
		for _, m := range req.Messages {
			n += len(m.Content)
		}
		tokens = int64(n/4 + 1)
	}
	msg := map[string]any{"role": "assistant", "content": a.Text}
	finish := "stop"
	if a.ToolCall != "" {
		args := a.ToolArgs
		if args == "" {
			args = "{}"
		}
		msg["tool_calls"] = []any{map[string]any{"id": "call_1", "type": "function",
			"function": map[string]any{"name": a.ToolCall, "arguments": args}}}
		finish = "tool_calls"
	}
	body := map[string]any{
		"id": "chatcmpl-fake", "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
		"usage":   map[string]any{"prompt_tokens": tokens - tokens/4, "completion_tokens": tokens / 4, "total_tokens": tokens},
	}
	if a.NoUsage {
		delete(body, "usage")
	}
	json.NewEncoder(w).Encode(body)
}

// Demo answers with the line of the prompt's knowledge that shares the
// most words (or their longer forms) with the customer's message, and calls the first tool
// offered (the hand-over) when no line shares any, or when the customer
// asks for a person.
func Demo(r Request) Answer {
	question := words(r.Last().Content)
	handOver := Answer{Text: ""}
	if len(r.Tools) > 0 {
		handOver.ToolCall, handOver.ToolArgs = r.Tools[0], `{"reason":"the knowledge holds nothing on this"}`
	} else {
		handOver.Text = "I do not know; a person will answer you."
	}
	for _, w := range []string{"person", "human", "agent", "someone"} {
		if question[w] {
			return handOver
		}
	}
	sys := r.System()
	start, end := strings.Index(sys, "<knowledge>"), strings.Index(sys, "</knowledge>")
	if start < 0 || end < start {
		return handOver
	}
	best, bestScore := "", 0
	for _, line := range strings.Split(sys[start+len("<knowledge>"):end], "\n") {
		line = strings.TrimSpace(line)
		score := 0
		for w := range words(line) {
			for q := range question {
				if sameWord(q, w) {
					score++
					break
				}
			}
		}
		if score > bestScore {
			best, bestScore = line, score
		}
	}
	if bestScore == 0 {
		return handOver
	}
	return Answer{Text: best}
}

// sameWord matches a word and its longer forms ("deliver",
// "delivery"), a little like a person reading would.
func sameWord(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return a == b || (len(a) >= 4 && strings.HasPrefix(b, a))
}

// common are words too common to tell lines apart.
var common = map[string]bool{"the": true, "and": true, "you": true, "your": true, "are": true, "for": true, "what": true,
	"when": true, "how": true, "can": true, "with": true, "from": true, "this": true, "that": true, "have": true,
	"our": true, "does": true, "will": true, "not": true, "but": true, "all": true, "any": true, "there": true}

// words are the distinct words of three letters or more in s, lower-cased,
// but the most common.
func words(s string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if len([]rune(w)) >= 3 && !common[w] {
			out[w] = true
		}
	}
	return out
}
