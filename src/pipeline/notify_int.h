/* Pieces of the e-mail notifier shared between its files and its unit tests:
 * the address check, the From parser and the message composer. Not a public
 * interface. */
#ifndef CLC_NOTIFY_INT_H
#define CLC_NOTIFY_INT_H

#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/err.h"
#include "pipeline/notify.h"

#define CLC_NOTIFY_ADDR_MAX 254
#define CLC_NOTIFY_MAX_RCPT 100
/* Largest message we compose; the text of a renewal mail is a few KiB. */
#define CLC_NOTIFY_MSG_MAX ((size_t)256 * 1024)

/* NULL when s is an acceptable addr-spec; otherwise why not (a static
 * string). Conservative: dot-atom local part (no quoted strings), a domain
 * of at least two LDH labels, ASCII only, at most 254 bytes. n is the length
 * of s (it need not be NUL-terminated). */
const char *clc_notify_addr_problem(const char *s, size_t n);

/* "Name <addr>" or "addr" split into a display name (may be "") and the
 * address, each malloc'd. CLC_ERR_INVALID when either is unacceptable. */
enum clc_err clc_notify_parse_from(const char *from, char **display, char **addr,
                                   struct clc_errinfo *ei);

/* The message as sent (headers, blank line, MIME body), CRLF line ends. */
struct clc_notify_compose_in {
    const char *from_display; /* may be "" */
    const char *from_addr;
    const char *const *to;
    size_t nto;
    int64_t date;           /* Unix seconds, for the Date header */
    const char *boundary;   /* NULL = random */
    const char *msgid_left; /* NULL = random (left of '@' in Message-ID) */
};
enum clc_err clc_notify_compose(const struct clc_notify_compose_in *in,
                                const struct clc_notify_renewal *r, struct clc_buf *out,
                                struct clc_errinfo *ei);

/* Building blocks, exposed for tests. */
/* Appends quoted-printable (RFC 2045 §6.7) of UTF-8 text whose lines end in
 * "\n": output lines end in CRLF and stay within 76 characters. */
enum clc_err clc_notify_qp(struct clc_buf *b, const char *text, size_t n);
/* Appends s with & < > " ' as entities and control characters as spaces. */
enum clc_err clc_notify_html_escape(struct clc_buf *b, const char *s);
/* Appends a header "Name: value" for an unstructured value (Subject): as is
 * when printable ASCII, else RFC 2047 B encoded-words on folded lines; any
 * control character becomes a space first, so no value can end the header. */
enum clc_err clc_notify_header_text(struct clc_buf *b, const char *name, const char *value);

#endif
