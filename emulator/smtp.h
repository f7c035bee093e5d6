/* The emulated SMTP sink as seen from outside its files: where its listeners
 * are, and the outage switch tests use for "mail server down". The sink
 * speaks ESMTP on plain TCP (no civetweb); its mailbox is the HTTPS service
 * "mailbox". */
#ifndef EMU_SMTP_H
#define EMU_SMTP_H

#include <stddef.h>

struct emu;

/* "smtp://127.0.0.1:N" for kind "smtp" (STARTTLS offered), "smtps://..."
 * for "smtps" (implicit TLS), "smtp://..." for "smtp-plain" (no TLS at all,
 * like an old internal relay). NULL when the sink is not mounted. */
const char *emu_smtp_url(const struct emu *e, const char *kind);

/* 1 = every new connection gets "421 4.3.2 Service not available" and is
 * closed (what a client sees of a mail server that is down); 0 = normal. */
void emu_smtp_set_down(struct emu *e, int down);
/* SMTP sessions accepted so far (tests check connection reuse with it). */
size_t emu_smtp_sessions(struct emu *e);

#endif
