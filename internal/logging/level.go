package logging

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// ParseLevel parses a level name: debug, info, warning (or warn), error,
// critical, in any case.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	case "CRITICAL":
		return slog.LevelError + 4, nil
	}
	return 0, fmt.Errorf("unknown log level %q (use debug, info, warning, error or critical)", s)
}

// SetLevel changes the level of the log output at run time (the catcher
// keeps warnings and errors whatever the level). The change is logged at
// INFO, where it shows both before and after (whichever is visible).
func (l *Logging) SetLevel(level slog.Level, why string) {
	old := l.Level.Level()
	if old == level {
		return
	}
	msg := "log level changed"
	args := []any{ComponentKey, "logging", "from", LevelName(old), "to", LevelName(level), "by", why}
	if level > old { // say it while it still shows
		l.Logger.Info(msg, args...)
		l.Level.Set(level)
		return
	}
	l.Level.Set(level)
	l.Logger.Info(msg, args...)
}

// maxLevelBody bounds the body of a level change request.
const maxLevelBody = 1024

// LevelHandler serves the log level of the daemon (mounted on the REST API
// as /log-level):
//
//	GET            -> 200 {"level": "INFO"}
//	PUT or POST    body: a level name, as plain text ("debug"), a JSON
//	               string ("debug") or {"level": "debug"}
//	               -> 200 {"level": "DEBUG"}, 400 {"error": ...} if invalid
func (l *Logging) LevelHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut, http.MethodPost:
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLevelBody))
			if err != nil {
				levelAnswer(w, http.StatusBadRequest, "error", "reading the request body: "+err.Error())
				return
			}
			level, err := ParseLevel(levelName(body))
			if err != nil {
				levelAnswer(w, http.StatusBadRequest, "error", err.Error())
				return
			}
			l.SetLevel(level, "API request from "+r.RemoteAddr)
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT, POST")
			levelAnswer(w, http.StatusMethodNotAllowed, "error", "The method "+r.Method+" is not allowed for this resource.")
			return
		}
		levelAnswer(w, http.StatusOK, "level", LevelName(l.Level.Level()))
	})
}

// levelName extracts the level name of a request body.
func levelName(body []byte) string {
	var v any
	if json.Unmarshal(body, &v) == nil {
		switch v := v.(type) {
		case string:
			return v
		case map[string]any:
			s, _ := v["level"].(string)
			return s
		}
	}
	return string(body)
}

func levelAnswer(w http.ResponseWriter, status int, key, value string) {
	b, _ := json.Marshal(map[string]string{key: value})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
