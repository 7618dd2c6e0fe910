package inspect

// Word classes: a word may belong to several. The detectors are phrase
// grammars over these classes, checked on the few words before the one just
// read, so a phrasing that swaps a synonym or adds a word still matches.
const (
	cOverV      uint64 = 1 << iota // ignore, disregard, forget
	cPrevMod                       // previous, prior, above, all, your
	cInstr                         // instructions, rules, prompt
	cNewMod                        // new, updated, real
	cRole                          // what "you are now ..." turns the model into
	cAI                            // ai, assistant, llm, claude
	cAIWeak                        // agent, model: an AI word only after "ai"/"language"
	cNote                          // note, message, reminder
	cVoc                           // dear, hey, attention
	cUser                          // user, human
	cTell                          // tell, inform, mention
	cTellGer                       // telling, informing
	cNeg                           // not, never, don't
	cExfil                         // send, forward, upload, pass
	cRead                          // read, cat, open, fetch
	cTool                          // call, use, invoke, run
	cModal                         // must, should, will
	cAdv                           // now, then, please, immediately: skipped before a verb
	cStealth                       // silently, secretly
	cDet                           // the, this, your
	cSecret                        // id_rsa, .ssh, .env, mcp.json: always a secret
	cSecretWeak                    // password, token, api_key: a secret when asked for by name
	cScope                         // repos, emails, files: data when someone's or private
	cUpgrade                       // all, user's, private: makes a weak secret a real one
	cDest                          // to, into, in: what follows is written, not read
	cToolNoun                      // tool, tools, mcp
	cPartic                        // sent, forwarded: the passive of an exfil verb
	cKnow                          // know, notice, find (out)
	cURLNoun                       // url, link, image, parameter
	cConv                          // conversation, chat, history, summary
	cPhrase                        // anchors a rule of its own (see phrases)
	cFill                          // add, put, insert: write data somewhere
	cAct                           // reply, approve, delete: other verbs that order
	cAIName                        // claude, gemini: also people's names
)

// cVerb is any verb that acts on data; cImperativeLead, a word that may
// introduce an order to the model after "IMPORTANT:".
const (
	cVerb           = cExfil | cRead | cTool | cFill
	cImperativeLead = cVerb | cOverV | cTell | cNeg | cModal | cStealth
)

// classOf returns the classes of a lowercased word, 0 for most words.
func classOf(w []byte) uint64 {
	switch string(w) {
	// override
	case "ignore", "disregard", "forget", "override", "bypass", "discard", "overlook", "abandon":
		return cOverV
	case "prior", "above", "earlier":
		return cPrevMod | cPhrase
	case "previous", "preceding", "original", "old", "initial", "former", "existing", "foregoing",
		"aforementioned", "system":
		return cPrevMod
	case "instructions", "instruction", "directives", "directive":
		return cInstr | cNote
	case "directions", "rules", "prompt", "prompts", "guidelines", "guidance", "constraints", "restrictions",
		"safeguards", "guardrails", "policies", "programming", "orders", "commands", "task", "tasks":
		return cInstr
	case "context":
		return cInstr | cConv
	case "new", "updated", "revised", "real", "actual", "true", "changed", "urgent":
		return cNewMod
	case "secret":
		return cNewMod | cSecretWeak
	case "hidden":
		return cNewMod
	// the model and the person
	case "ai", "llm", "llms", "chatbot", "chatgpt", "gpt", "assistant", "assistants", "ai's":
		return cAI | cRole
	case "claude", "gemini", "copilot":
		return cAI | cRole | cAIName
	case "agent", "agents", "model", "models", "bot", "bots":
		return cAIWeak | cRole
	case "dan", "jailbroken", "unrestricted", "unfiltered", "uncensored", "unaligned":
		return cRole
	case "note", "message", "reminder", "memo", "hint", "attention":
		return cNote | cVoc
	case "warning":
		return cNote | cTellGer
	case "notice":
		return cNote
	case "dear", "hey", "hi", "hello", "attn", "psst":
		return cVoc
	case "user", "human", "human's":
		return cUser // "the user": the one person an injection hides from
	case "user's":
		return cUser | cUpgrade
	case "tell", "inform", "mention", "notify", "alert", "disclose", "warn":
		return cTell
	case "reveal", "show", "display":
		return cTell | cRead
	case "let":
		return cTell
	case "telling", "informing", "notifying", "alerting", "letting", "mentioning", "revealing",
		"disclosing", "showing":
		return cTellGer
	case "not", "never", "don't", "dont", "mustn't", "shouldn't", "no", "doesn't", "didn't", "won't":
		return cNeg
	// verbs on data
	case "send", "forward", "email", "e-mail", "mail", "upload", "post", "transmit", "exfiltrate", "leak",
		"share", "submit", "pass", "include", "attach", "append", "embed", "paste", "encode", "publish", "export":
		return cExfil
	case "add", "put", "insert", "write", "provide", "give":
		// "add .env to .gitignore", "add your key to the agent": where a
		// secret goes, not what leaves
		return cFill
	case "read", "cat", "get", "fetch", "retrieve", "access", "extract", "collect", "gather", "grab",
		"take", "dump", "print", "return", "summarize", "steal", "obtain", "list":
		return cRead
	case "output":
		return cRead | cPhrase
	case "call", "use", "invoke", "run", "execute", "trigger", "utilize":
		return cTool
	case "must", "should", "shall":
		return cModal
	case "now", "then", "please", "first", "also", "immediately", "just", "always", "kindly", "quickly",
		"simply", "next", "finally", "actually", "definitely", "absolutely", "carefully", "asap", "instead":
		return cAdv
	case "silently", "quietly", "invisibly":
		return cAdv | cStealth
	case "secretly", "covertly", "discreetly", "stealthily":
		return cAdv | cStealth | cPhrase
	case "the", "this", "that", "these", "those", "a", "an", "its", "their", "his", "her", "any",
		"my", "our", "some", "your":
		return cDet
	case "every":
		return cDet | cUpgrade
	case "all":
		return cDet | cUpgrade | cPhrase
	// secrets
	case "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".ssh", "authorized_keys", ".env", ".envrc",
		"mcp.json", "claude_desktop_config.json", "claude_desktop_config", ".aws", ".netrc", ".npmrc",
		".pypirc", ".git-credentials", ".pgpass", ".bash_history", ".zsh_history", "wallet.dat":
		return cSecret
	case "password", "passwords", "passwd", "passphrase", "passphrases", "token", "tokens", "secrets",
		"credential", "credentials", "apikey", "api_key", "api_keys", "access_token", "cookie", "cookies",
		"otp", "shadow":
		return cSecretWeak
	case "repos", "repositories", "repo", "repository", "emails", "messages", "chats", "contacts", "files",
		"documents", "inbox", "conversations", "notes", "key", "keys", "data", "information",
		"clipboard", "card", "cards", "numbers":
		return cScope
	case "users'", "author's", "owner's", "victim's", "private", "personal", "confidential",
		"sensitive", "saved", "stored", "other":
		return cUpgrade
	case "to":
		return cDest | cPhrase
	case "into", "in", "inside", "under", "onto":
		return cDest
	case "tool", "tools", "mcp":
		return cToolNoun
	case "sent", "forwarded", "emailed", "uploaded", "posted", "included", "attached", "appended", "passed",
		"shared", "transmitted", "leaked", "exfiltrated", "copied", "extracted":
		return cPartic
	case "know", "learn", "suspect", "realize", "realise", "discover", "aware", "told", "informed":
		return cKnow
	case "url", "urls", "link", "links", "image", "parameter", "param", "query", "querystring", "markdown":
		return cURLNoun
	case "summary":
		return cConv | cPhrase
	case "conversation", "chat", "history", "transcript":
		return cConv
	case "answer", "respond", "reply":
		return cPhrase | cAct
	case "you", "answering", "responding", "replying", "proceeding", "continuing", "response", "responses",
		"reading", "processing", "parsing", "summarizing",
		"privacy", "security", "confidentiality", "secrecy", "everything", "permission", "consent", "approval",
		"invoked", "called", "used", "executed", "triggered", "knowing", "knowledge", "before",
		"previously", "below", "follow", "mode", "given", "received", "provided", "test", "fake", "outdated",
		"void", "invalid", "obsolete", "cancelled", "canceled", "revoked", "superseded", "false", "wrong":
		return cPhrase
	case "keep", "hide", "conceal", "say", "go", "search", "find", "look", "open", "view", "load", "copy", "store", "save", "do", "make", "ensure", "approve", "merge", "delete",
		"remove", "create", "change", "update", "click", "visit", "navigate", "check", "verify",
		"confirm", "format", "act", "pretend", "translate", "render":
		return cAct
	}
	return 0
}
