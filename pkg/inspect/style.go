package inspect

import "strings"

// hiddenStyle reports whether a tag's style attribute hides its text:
// display:none, visibility:hidden, font-size:0, opacity:0, transparent or
// white-on-white text, a zero-height clipped box, or a box moved off screen.
func hiddenStyle(attrs string) bool {
	k := indexFold(attrs, "style")
	if k < 0 {
		return false
	}
	v := attrs[k+len("style"):]
	v = strings.TrimLeft(v, " ")
	if !strings.HasPrefix(v, "=") {
		return false
	}
	v = strings.TrimLeft(v[1:], " ")
	if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
		if e := strings.IndexByte(v[1:], v[0]); e >= 0 {
			v = v[1 : 1+e]
		} else {
			v = v[1:]
		}
	}
	var whiteText, whiteBack, zeroHeight, clipped, offscreen bool
	for decl := range strings.SplitSeq(v, ";") {
		c := strings.IndexByte(decl, ':')
		if c < 0 {
			continue
		}
		prop := strings.ToLower(strings.TrimSpace(decl[:c]))
		val := strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(decl[c+1:]), "!important")))
		switch prop {
		case "display":
			if val == "none" {
				return true
			}
		case "visibility":
			if val == "hidden" || val == "collapse" {
				return true
			}
		case "font-size", "opacity", "max-height":
			if zeroLength(val) || prop == "font-size" && val == "1px" {
				return true
			}
		case "height":
			zeroHeight = zeroLength(val)
		case "overflow":
			clipped = val == "hidden" || val == "clip"
		case "color":
			if val == "transparent" || strings.HasPrefix(val, "rgba(") && strings.HasSuffix(strings.ReplaceAll(val, " ", ""), ",0)") {
				return true
			}
			whiteText = isWhite(val)
		case "background", "background-color":
			whiteBack = isWhite(val)
		case "left", "top", "text-indent", "margin-left":
			offscreen = offscreen || strings.HasPrefix(val, "-") && len(strings.TrimLeft(val, "-0123456789.")) < len(val)-4
		}
	}
	return whiteText && whiteBack || zeroHeight && clipped || offscreen
}

// zeroLength reports "0", "0px", "0.0em", "0%".
func zeroLength(v string) bool {
	v = strings.TrimRight(v, "abcdefghijklmnopqrstuvwxyz%")
	return v != "" && strings.Trim(v, "0.") == ""
}

func isWhite(v string) bool {
	v = strings.ReplaceAll(v, " ", "")
	return v == "white" || v == "#fff" || v == "#ffffff" || v == "#fffffe" || v == "rgb(255,255,255)" ||
		v == "#ffff" || v == "#ffffffff" || strings.HasPrefix(v, "rgba(255,255,255,")
}

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func (s *scanner) openRegion(r region) {
	if s.nregions < len(s.regions) {
		s.regions[s.nregions] = r
		s.nregions++
	}
}

// What lies in a region.
const (
	mFinding   = iota // an instruction finding
	mOrder            // an order ("click", "delete")
	mDataOrder        // an order to read or send ("summarize", "send")
)

// markRegions notes what lies at off in the regions that contain it.
func (s *scanner) markRegions(off, what int) {
	for k := 0; k < s.nregions; k++ {
		if r := &s.regions[k]; off >= r.start && off < r.end {
			r.marked = r.marked || what == mFinding
			r.ordered = r.ordered || what != mFinding
			r.dataOrdered = r.dataOrdered || what == mDataOrder
		}
	}
}

// closeRegions judges the regions that end at or before upTo.
func (s *scanner) closeRegions(upTo int) {
	kept := 0
	for k := 0; k < s.nregions; k++ {
		r := s.regions[k]
		if r.end > upTo {
			s.regions[kept] = r
			kept++
			continue
		}
		weight := 0
		switch r.kind {
		case rComment:
			if r.letters >= commentLetters {
				weight = wComment
			}
			if r.marked {
				weight = wComment + wCommentMarker
			}
			s.add(lComment, r.start, r.end, weight)
		case rUrgent:
			if r.marked || r.dataOrdered {
				s.add(lUrgent, r.start, r.end, wUrgentTag)
			}
		case rStyle:
			if r.letters >= styleLetters {
				weight = wStyleText
			}
			if r.marked || r.ordered {
				weight = wStyle
			}
			s.add(lStyle, r.start, r.end, weight)
		}
	}
	s.nregions = kept
}

func (s *scanner) judgeRegions() { s.closeRegions(len(s.text) + 1) }
