package identity

import (
	"strconv"
)

// Resolve reads a server process's attributes, identity and client.
func (r *Resolver) Resolve(pid int) (Server, error) {
	cl := r.client(pid)
	var clientEnv map[string]string
	if cl.PID > 0 {
		clientEnv, _ = r.proc().Environ(cl.PID)
	}
	a, err := r.attrs(pid, clientEnv)
	if err != nil {
		return Server{}, err
	}
	return Server{Identity: r.classify(a), Attrs: a, Client: cl}, nil
}

// client finds the process driving pid over its stdin: the first ancestor
// whose stdin is another file (npx, npm exec and sh pass theirs on).
func (r *Resolver) client(pid int) Client {
	p := r.proc()
	in, err := p.FD(pid, 0)
	if err != nil || in.Kind == "" {
		return Client{}
	}
	for a, n := p.PPID(pid), 0; a > 1 && n < 32; a, n = p.PPID(a), n+1 {
		ch, err := p.FD(a, 0)
		if err == nil && ch.Ino == in.Ino && ch.Kind == in.Kind {
			continue
		}
		start, _ := p.Start(a)
		exe, _ := p.Exe(a)
		return Client{PID: a, Start: start, Exe: exe, Key: strconv.Itoa(a) + "-" + strconv.FormatUint(start, 10)}
	}
	return Client{}
}
