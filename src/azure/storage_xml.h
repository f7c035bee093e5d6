/* A small, strict XML reader for the flat documents Azure Storage answers
 * (QueueMessagesList, EnumerationResults, Error) and the escaping its request
 * bodies need. Bounded: input size, node count and depth; no DTDs, no
 * external entities, no namespaces (Storage uses none). */
#ifndef CLC_STORAGE_XML_H
#define CLC_STORAGE_XML_H

#include <stddef.h>
#include "core/buf.h"
#include "core/err.h"

#define CLC_XML_MAX_DEPTH 16

struct clc_xml_node {
    char *name; /* element name */
    char *text; /* character data directly inside, entities decoded */
    size_t text_len;
    int first_child; /* node indexes; -1 = none */
    int next_sibling;
};

struct clc_xml {
    struct clc_xml_node *nodes; /* nodes[0] is the root element */
    size_t n;
};

/* Parses one document of at most len bytes with at most max_nodes elements.
 * CLC_ERR_PARSE (with the byte offset) when malformed, CLC_ERR_LIMIT over the
 * bounds. Attributes are checked for form and dropped. */
enum clc_err clc_xml_parse(const char *text, size_t len, size_t max_nodes, struct clc_xml **out,
                           struct clc_errinfo *ei);
void clc_xml_free(struct clc_xml *x);

const struct clc_xml_node *clc_xml_root(const struct clc_xml *x);
/* First child of n named name (NULL name = any child), or NULL. */
const struct clc_xml_node *clc_xml_child(const struct clc_xml *x, const struct clc_xml_node *n,
                                         const char *name);
/* Next sibling after n with the same name as n, or NULL. */
const struct clc_xml_node *clc_xml_next(const struct clc_xml *x, const struct clc_xml_node *n);
/* Text of the first child named name, or NULL when there is no such child. */
const char *clc_xml_child_text(const struct clc_xml *x, const struct clc_xml_node *n,
                               const char *name);

/* Appends s (n bytes) escaped for element content. Refuses (CLC_ERR_INVALID)
 * invalid UTF-8 and characters XML 1.0 cannot carry (controls other than tab,
 * line feed, carriage return); CR is written as a character reference so it
 * survives the parser's line-end normalisation. */
enum clc_err clc_xml_escape(struct clc_buf *b, const char *s, size_t n, struct clc_errinfo *ei);

/* A list answer (<EnumerationResults>): parses body, checks the root, finds
 * the <group> element (e.g. "Queues") and counts its <item> children. *first
 * is the first item (NULL when none), *next_marker the NextMarker text or
 * NULL; both borrowed from *x, which the caller frees. `what` names the
 * service in messages ("queue", "blob"). */
enum clc_err clc_xml_enumeration(const char *body, size_t len, size_t max_nodes, const char *what,
                                 const char *group, const char *item, struct clc_xml **x,
                                 const struct clc_xml_node **first, size_t *count,
                                 const char **next_marker, struct clc_errinfo *ei);

#endif
