/* Strict reader for Azure Storage's flat XML documents and the escaping of
 * request bodies (see storage_xml.h). Recursive descent, depth-bounded; the
 * whole document becomes an array of nodes linked by index. */
#include <stdlib.h>
#include <string.h>
#include "azure/storage_xml.h"

#define MAX_NAME 128

struct parser {
    const char *s;
    size_t len;
    size_t pos;
    struct clc_xml *x;
    size_t cap;
    size_t max_nodes;
    struct clc_errinfo *ei;
};

static enum clc_err fail(struct parser *p, const char *what)
{
    return clc_errf(p->ei, CLC_ERR_PARSE, "xml: %s at byte %zu", what, p->pos);
}

static int at(const struct parser *p, const char *lit)
{
    size_t n = strlen(lit);
    return p->len - p->pos >= n && memcmp(p->s + p->pos, lit, n) == 0;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && is_ws(p->s[p->pos]))
        p->pos++;
}

/* Moves past the next occurrence of end; 0 when there is none. */
static int skip_past(struct parser *p, const char *end)
{
    size_t n = strlen(end);
    while (p->len - p->pos >= n) {
        if (memcmp(p->s + p->pos, end, n) == 0) {
            p->pos += n;
            return 1;
        }
        p->pos++;
    }
    return 0;
}

static int name_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80;
}

static int name_char(unsigned char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static enum clc_err parse_name(struct parser *p, char out[MAX_NAME])
{
    size_t n = 0;
    if (p->pos >= p->len || !name_start((unsigned char)p->s[p->pos]))
        return fail(p, "expected a name");
    while (p->pos < p->len && name_char((unsigned char)p->s[p->pos])) {
        if (n + 1 >= MAX_NAME)
            return fail(p, "name too long");
        out[n++] = p->s[p->pos++];
    }
    out[n] = '\0';
    return CLC_OK;
}

static enum clc_err put_utf8(struct clc_buf *b, unsigned long cp)
{
    char u[4];
    size_t n = 0;
    if (cp < 0x80) {
        u[n++] = (char)cp;
    } else if (cp < 0x800) {
        u[n++] = (char)(0xc0 | (cp >> 6));
        u[n++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        u[n++] = (char)(0xe0 | (cp >> 12));
        u[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[n++] = (char)(0x80 | (cp & 0x3f));
    } else {
        u[n++] = (char)(0xf0 | (cp >> 18));
        u[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[n++] = (char)(0x80 | (cp & 0x3f));
    }
    return clc_buf_append(b, u, n);
}

static int char_allowed(unsigned long cp)
{
    return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
           (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/* At '&': decodes one reference into b. */
static enum clc_err parse_ref(struct parser *p, struct clc_buf *b)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"quot;", '"'}, {"apos;", '\''}};
    unsigned long cp = 0;
    int digits = 0, hex = 0;

    p->pos++;
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (at(p, named[i].name)) {
            p->pos += strlen(named[i].name);
            return clc_buf_append_byte(b, named[i].c);
        }
    if (!at(p, "#"))
        return fail(p, "unknown entity");
    p->pos++;
    if (at(p, "x")) {
        hex = 1;
        p->pos++;
    }
    while (p->pos < p->len && p->s[p->pos] != ';') {
        char c = p->s[p->pos];
        unsigned v = 0;
        if (c >= '0' && c <= '9')
            v = (unsigned)(c - '0');
        else if (hex && c >= 'a' && c <= 'f')
            v = (unsigned)(c - 'a' + 10);
        else if (hex && c >= 'A' && c <= 'F')
            v = (unsigned)(c - 'A' + 10);
        else
            return fail(p, "bad character reference");
        cp = cp * (hex ? 16 : 10) + v;
        if (cp > 0x10ffff || ++digits > 8)
            return fail(p, "character reference out of range");
        p->pos++;
    }
    if (p->pos >= p->len || digits == 0 || !char_allowed(cp))
        return fail(p, "bad character reference");
    p->pos++;
    return put_utf8(b, cp);
}

/* Character data up to the next '<' (or the closing quote when quote is
 * set), references decoded, line ends normalised as XML requires. */
static enum clc_err parse_chars(struct parser *p, struct clc_buf *b, char quote)
{
    enum clc_err rc = CLC_OK;
    while (rc == CLC_OK && p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == '<') {
            if (quote)
                return fail(p, "'<' in an attribute value");
            break;
        }
        if (quote && c == quote)
            break;
        if (c == '&') {
            rc = parse_ref(p, b);
            continue;
        }
        if ((unsigned char)c < 0x20 && !is_ws(c))
            return fail(p, "control character");
        if (c == '\r') {
            p->pos++;
            if (p->pos < p->len && p->s[p->pos] == '\n')
                continue;
            rc = clc_buf_append_byte(b, '\n');
            continue;
        }
        /* A run of plain characters is copied in one append. */
        size_t start = p->pos++;
        while (p->pos < p->len) {
            char d = p->s[p->pos];
            if (d == '<' || d == '&' || d == '\r' || (quote && d == quote) ||
                ((unsigned char)d < 0x20 && !is_ws(d)))
                break;
            p->pos++;
        }
        rc = clc_buf_append(b, p->s + start, p->pos - start);
    }
    return rc;
}

static enum clc_err parse_attributes(struct parser *p)
{
    char name[MAX_NAME];
    struct clc_buf scratch;
    enum clc_err rc = CLC_OK;

    clc_buf_init(&scratch, p->len + 1);
    for (;;) {
        size_t before = p->pos;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] == '>' || p->s[p->pos] == '/')
            break;
        if (p->pos == before) {
            rc = fail(p, "expected whitespace before an attribute");
            break;
        }
        rc = parse_name(p, name);
        if (rc != CLC_OK)
            break;
        skip_ws(p);
        if (!at(p, "=")) {
            rc = fail(p, "expected '=' after an attribute name");
            break;
        }
        p->pos++;
        skip_ws(p);
        if (!at(p, "\"") && !at(p, "'")) {
            rc = fail(p, "attribute value not quoted");
            break;
        }
        char q = p->s[p->pos++];
        clc_buf_reset(&scratch);
        rc = parse_chars(p, &scratch, q);
        if (rc != CLC_OK)
            break;
        if (p->pos >= p->len) {
            rc = fail(p, "unterminated attribute value");
            break;
        }
        p->pos++;
    }
    clc_buf_cleanup(&scratch);
    return rc;
}

static enum clc_err new_node(struct parser *p, const char *name, int *idx)
{
    struct clc_xml *x = p->x;
    if (x->n >= p->max_nodes)
        return clc_errf(p->ei, CLC_ERR_LIMIT, "xml: more than %zu elements", p->max_nodes);
    if (x->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        struct clc_xml_node *nn = realloc(x->nodes, ncap * sizeof *nn);
        if (!nn)
            return CLC_ERR_NOMEM;
        x->nodes = nn;
        p->cap = ncap;
    }
    struct clc_xml_node *n = &x->nodes[x->n];
    memset(n, 0, sizeof *n);
    n->first_child = -1;
    n->next_sibling = -1;
    n->name = strdup(name);
    if (!n->name)
        return CLC_ERR_NOMEM;
    *idx = (int)x->n++;
    return CLC_OK;
}

/* Comments, processing instructions; DTDs are refused. 1 when one was
 * consumed. */
static enum clc_err parse_misc(struct parser *p, int *consumed)
{
    *consumed = 0;
    if (at(p, "<!--")) {
        p->pos += 4;
        if (!skip_past(p, "-->"))
            return fail(p, "unterminated comment");
        *consumed = 1;
    } else if (at(p, "<?")) {
        if (!skip_past(p, "?>"))
            return fail(p, "unterminated processing instruction");
        *consumed = 1;
    } else if (at(p, "<!DOCTYPE") || at(p, "<!ENTITY")) {
        return fail(p, "document type declarations are not accepted");
    }
    return CLC_OK;
}

static enum clc_err parse_element(struct parser *p, int depth, int *out_idx)
{
    char name[MAX_NAME], end[MAX_NAME];
    struct clc_buf text;
    enum clc_err rc = CLC_OK;
    int idx = -1, last_child = -1, consumed = 0;

    clc_buf_init(&text, p->len + 1);
    if (depth > CLC_XML_MAX_DEPTH) {
        rc = clc_errf(p->ei, CLC_ERR_LIMIT, "xml: nesting deeper than %d", CLC_XML_MAX_DEPTH);
        goto out;
    }
    p->pos++; /* '<' */
    rc = parse_name(p, name);
    if (rc == CLC_OK)
        rc = new_node(p, name, &idx);
    if (rc == CLC_OK)
        rc = parse_attributes(p);
    if (rc != CLC_OK)
        goto out;
    if (at(p, "/>")) {
        p->pos += 2;
        goto done;
    }
    if (!at(p, ">")) {
        rc = fail(p, "expected '>'");
        goto out;
    }
    p->pos++;
    for (;;) {
        if (p->pos >= p->len) {
            rc = fail(p, "unexpected end of document");
            goto out;
        }
        if (at(p, "</"))
            break;
        if (at(p, "<![CDATA[")) {
            size_t start = p->pos + 9;
            p->pos = start;
            if (!skip_past(p, "]]>")) {
                rc = fail(p, "unterminated CDATA section");
                goto out;
            }
            rc = clc_buf_append(&text, p->s + start, p->pos - 3 - start);
        } else if (at(p, "<!") || at(p, "<?")) {
            rc = parse_misc(p, &consumed);
            if (rc == CLC_OK && !consumed)
                rc = fail(p, "unexpected markup");
        } else if (at(p, "<")) {
            int child = -1;
            rc = parse_element(p, depth + 1, &child);
            if (rc == CLC_OK) {
                if (last_child < 0)
                    p->x->nodes[idx].first_child = child;
                else
                    p->x->nodes[last_child].next_sibling = child;
                last_child = child;
            }
        } else {
            rc = parse_chars(p, &text, 0);
        }
        if (rc != CLC_OK)
            goto out;
    }
    p->pos += 2;
    rc = parse_name(p, end);
    if (rc != CLC_OK)
        goto out;
    if (strcmp(name, end) != 0) {
        rc = fail(p, "end tag does not match its start tag");
        goto out;
    }
    skip_ws(p);
    if (!at(p, ">")) {
        rc = fail(p, "expected '>' after an end tag");
        goto out;
    }
    p->pos++;
done:
    p->x->nodes[idx].text_len = text.len;
    p->x->nodes[idx].text = clc_buf_take(&text, NULL);
    if (!p->x->nodes[idx].text)
        rc = CLC_ERR_NOMEM;
    *out_idx = idx;
out:
    clc_buf_cleanup(&text);
    return rc;
}

enum clc_err clc_xml_parse(const char *text, size_t len, size_t max_nodes, struct clc_xml **out,
                           struct clc_errinfo *ei)
{
    struct parser p = {.s = text, .len = len, .max_nodes = max_nodes, .ei = ei};
    enum clc_err rc = CLC_OK;
    int root = -1, consumed = 0;

    *out = NULL;
    if (!text)
        return clc_errf(ei, CLC_ERR_PARSE, "xml: empty document");
    p.x = calloc(1, sizeof *p.x);
    if (!p.x)
        return CLC_ERR_NOMEM;
    /* A UTF-8 byte order mark is allowed before the declaration. */
    if (at(&p, "\xef\xbb\xbf"))
        p.pos += 3;
    do {
        skip_ws(&p);
        rc = parse_misc(&p, &consumed);
    } while (rc == CLC_OK && consumed);
    if (rc != CLC_OK)
        goto out;
    if (!at(&p, "<")) {
        rc = fail(&p, p.pos >= p.len ? "no root element" : "text before the root element");
        goto out;
    }
    rc = parse_element(&p, 1, &root);
    if (rc != CLC_OK)
        goto out;
    do {
        skip_ws(&p);
        rc = parse_misc(&p, &consumed);
    } while (rc == CLC_OK && consumed);
    if (rc == CLC_OK && p.pos < p.len)
        rc = fail(&p, "content after the root element");
    if (rc != CLC_OK)
        goto out;
    *out = p.x;
    p.x = NULL;
out:
    clc_xml_free(p.x);
    return rc;
}

void clc_xml_free(struct clc_xml *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n; i++) {
        free(x->nodes[i].name);
        free(x->nodes[i].text);
    }
    free(x->nodes);
    free(x);
}

const struct clc_xml_node *clc_xml_root(const struct clc_xml *x)
{
    return x && x->n > 0 ? &x->nodes[0] : NULL;
}

const struct clc_xml_node *clc_xml_child(const struct clc_xml *x, const struct clc_xml_node *n,
                                         const char *name)
{
    if (!x || !n)
        return NULL;
    for (int i = n->first_child; i >= 0; i = x->nodes[i].next_sibling)
        if (!name || strcmp(x->nodes[i].name, name) == 0)
            return &x->nodes[i];
    return NULL;
}

const struct clc_xml_node *clc_xml_next(const struct clc_xml *x, const struct clc_xml_node *n)
{
    if (!x || !n)
        return NULL;
    for (int i = n->next_sibling; i >= 0; i = x->nodes[i].next_sibling)
        if (strcmp(x->nodes[i].name, n->name) == 0)
            return &x->nodes[i];
    return NULL;
}

const char *clc_xml_child_text(const struct clc_xml *x, const struct clc_xml_node *n,
                               const char *name)
{
    const struct clc_xml_node *c = clc_xml_child(x, n, name);
    return c ? c->text : NULL;
}

/* Length of the UTF-8 sequence at s (0 when invalid), its code point in cp. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned long *cp)
{
    size_t len = 0;
    unsigned long min = 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        *cp = s[0] & 0x1f;
        min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        *cp = s[0] & 0x0f;
        min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        *cp = s[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return len;
}

/* A byte that is a whole character, allowed in XML and sent as it is. */
static int plain_ascii(unsigned char c)
{
    return (c >= 0x20 && c < 0x7f && c != '<' && c != '>' && c != '&') || c == '\t' || c == '\n';
}

enum clc_err clc_xml_escape(struct clc_buf *b, const char *s, size_t n, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < n && rc == CLC_OK;) {
        unsigned long cp = 0;
        size_t run = 0, k = 0;

        /* Plain ASCII that needs no escaping goes out a run at a time. */
        while (i + run < n && plain_ascii(u[i + run]))
            run++;
        if (run > 0) {
            rc = clc_buf_append(b, s + i, run);
            i += run;
            continue;
        }
        k = utf8_seq(u + i, n - i, &cp);
        if (k == 0)
            return clc_errf(ei, CLC_ERR_INVALID, "xml: invalid UTF-8 at byte %zu", i);
        if (!char_allowed(cp))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "xml: character U+%04lX at byte %zu cannot be sent in XML "
                            "(base64-encode the text)",
                            cp, i);
        switch (cp) {
        case '<':
            rc = clc_buf_append_str(b, "&lt;");
            break;
        case '>':
            rc = clc_buf_append_str(b, "&gt;");
            break;
        case '&':
            rc = clc_buf_append_str(b, "&amp;");
            break;
        case '\r':
            rc = clc_buf_append_str(b, "&#xD;");
            break;
        default:
            rc = clc_buf_append(b, s + i, k);
        }
        i += k;
    }
    return rc;
}

enum clc_err clc_xml_enumeration(const char *body, size_t len, size_t max_nodes, const char *what,
                                 const char *group, const char *item, struct clc_xml **x,
                                 const struct clc_xml_node **first, size_t *count,
                                 const char **next_marker, struct clc_errinfo *ei)
{
    const struct clc_xml_node *root, *g, *it;
    const char *next;
    enum clc_err rc = clc_xml_parse(body, len, max_nodes, x, ei);

    *first = NULL;
    *count = 0;
    *next_marker = NULL;
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "%s: list answer", what);
    root = clc_xml_root(*x);
    if (strcmp(root->name, "EnumerationResults") != 0)
        return clc_errf(ei, CLC_ERR_PARSE, "%s: list answer is <%s>, not <EnumerationResults>",
                        what, root->name);
    g = clc_xml_child(*x, root, group);
    *first = clc_xml_child(*x, g, item);
    for (it = *first; it; it = clc_xml_next(*x, it))
        (*count)++;
    next = clc_xml_child_text(*x, root, "NextMarker");
    if (next && *next)
        *next_marker = next;
    return CLC_OK;
}
