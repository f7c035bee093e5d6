/* Storage Shared Key and SAS: string-to-sign vectors (the reference's own
 * example, a path-style emulator request with every rule in play),
 * signatures computed independently (openssl dgst; the SAS ones agree with
 * @azure/storage-queue's generators), and refusals of malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include "azure/storage_auth.h"
#include "azure/storage_xml.h"

#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define DATE "Thu, 23 Nov 2023 15:53:16 GMT"

static struct clc_storage_cred *dev_cred(void)
{
    struct clc_secret *k = NULL;
    struct clc_storage_cred *c = NULL;
    assert_int_equal(clc_secret_new(DEV_KEY, strlen(DEV_KEY), &k), CLC_OK);
    assert_int_equal(clc_storage_cred_shared_key("devstoreaccount1", k, &c, NULL), CLC_OK);
    clc_secret_free(k);
    return c;
}

static void sts_reference_example(void **state)
{
    (void)state;
    const char *hdrs[] = {"x-ms-version: 2021-12-02", "x-ms-date: " DATE, NULL};
    struct clc_storage_param q[] = {{"visibilitytimeout", "30"}, {"numofmessages", "1"}};
    struct clc_storage_sign_input in = {
        .method = "GET", .path = "/certlc/messages", .query = q, .nquery = 2, .headers = hdrs};
    struct clc_buf b;
    clc_buf_init(&b, 4096);
    assert_int_equal(clc_storage_string_to_sign("acct", &in, &b, NULL), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:" DATE
                                         "\nx-ms-version:2021-12-02\n/acct/certlc/messages"
                                         "\nnumofmessages:1\nvisibilitytimeout:30");
    clc_buf_cleanup(&b);
}

/* Path-style URL (account twice), a body with its length and type, a Date
 * header that must be dropped for x-ms-date, header names in mixed case and
 * values with runs of blanks, query names in upper case. */
static const char *const path_style_hdrs[] = {
    "X-MS-Version: 2021-12-02",
    "Date: Mon, 01 Jan 2001 00:00:00 GMT",
    "x-ms-date: " DATE,
    "x-ms-meta-a:   one    two  ",
    "Content-Type: application/xml",
    "x-ms-client-request-id: 11111111-2222-3333-4444-555555555555",
    "Accept: */*",
    NULL};
static const struct clc_storage_param path_style_q[] = {{"VisibilityTimeout", "0"},
                                                        {"messagettl", "-1"}};
static const char path_style_sts[] =
    "POST\n\n\n38\n\napplication/xml\n\n\n\n\n\n\n"
    "x-ms-client-request-id:11111111-2222-3333-4444-555555555555\n"
    "x-ms-date:" DATE "\nx-ms-meta-a:one two\nx-ms-version:2021-12-02\n"
    "/devstoreaccount1/devstoreaccount1/certlc/messages\nmessagettl:-1\nvisibilitytimeout:0";

static void sts_path_style(void **state)
{
    (void)state;
    struct clc_storage_sign_input in = {.method = "POST",
                                        .path = "/devstoreaccount1/certlc/messages",
                                        .query = path_style_q,
                                        .nquery = 2,
                                        .headers = path_style_hdrs,
                                        .content_length = 38};
    struct clc_buf b;
    clc_buf_init(&b, 4096);
    assert_int_equal(clc_storage_string_to_sign("devstoreaccount1", &in, &b, NULL), CLC_OK);
    assert_string_equal(clc_buf_str(&b), path_style_sts);
    clc_buf_cleanup(&b);
}

static void sts_repeated_query_and_date(void **state)
{
    (void)state;
    /* Without x-ms-date the Date header is signed; repeated parameters are
     * sorted and joined; Content-Length 0 signs as empty. */
    const char *hdrs[] = {"Date: " DATE, "x-ms-version: 2021-12-02", NULL};
    struct clc_storage_param q[] = {{"include", "metadata"}, {"comp", "list"}, {"Include", "acl"}};
    struct clc_storage_sign_input in = {.method = "GET",
                                        .path = "/",
                                        .query = q,
                                        .nquery = 3,
                                        .headers = hdrs,
                                        .content_length = 0};
    struct clc_buf b;
    clc_buf_init(&b, 4096);
    assert_int_equal(clc_storage_string_to_sign("acct", &in, &b, NULL), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "GET\n\n\n\n\n\n" DATE "\n\n\n\n\n\n"
                                         "x-ms-version:2021-12-02\n/acct/\ncomp:list\n"
                                         "include:acl,metadata");
    clc_buf_cleanup(&b);
}

static void signature_vectors(void **state)
{
    (void)state;
    struct clc_storage_cred *c = dev_cred();
    struct clc_secret *auth = NULL;
    const char *hdrs[] = {"x-ms-version: 2021-12-02", "x-ms-date: " DATE, NULL};
    struct clc_storage_param q[] = {{"numofmessages", "1"}, {"visibilitytimeout", "30"}};
    struct clc_storage_sign_input in = {
        .method = "GET", .path = "/certlc/messages", .query = q, .nquery = 2, .headers = hdrs};

    /* The reference example signed as account "acct" needs that name. */
    struct clc_secret *k = NULL;
    struct clc_storage_cred *acct = NULL;
    assert_int_equal(clc_secret_new(DEV_KEY, strlen(DEV_KEY), &k), CLC_OK);
    assert_int_equal(clc_storage_cred_shared_key("acct", k, &acct, NULL), CLC_OK);
    assert_int_equal(clc_storage_shared_key_auth(acct, &in, &auth, NULL), CLC_OK);
    assert_string_equal(clc_secret_reveal(auth),
                        "SharedKey acct:NuhuUWQcJmF7t5x21z1hjlOfO6f94p6NOzvo0rbV8Xk=");
    clc_secret_free(auth);

    struct clc_storage_sign_input ps = {.method = "POST",
                                        .path = "/devstoreaccount1/certlc/messages",
                                        .query = path_style_q,
                                        .nquery = 2,
                                        .headers = path_style_hdrs,
                                        .content_length = 38};
    assert_int_equal(clc_storage_shared_key_auth(c, &ps, &auth, NULL), CLC_OK);
    assert_string_equal(clc_secret_reveal(auth), "SharedKey devstoreaccount1:"
                                                 "37+WejdxHvVq2/F1Q/I6sd/lC/uxoRvpRHI+OeE+oYc=");
    clc_secret_free(auth);
    clc_secret_free(k);
    clc_storage_cred_free(acct);
    clc_storage_cred_free(c);
}

static void sas_vectors(void **state)
{
    (void)state;
    struct clc_storage_cred *c = dev_cred();
    struct clc_secret *t = NULL;
    struct clc_storage_sas_opts acc = {.permissions = "rwdlacup",
                                       .services = "q",
                                       .resource_types = "sco",
                                       .start = 1703980800,
                                       .expiry = 1704067200,
                                       .version = "2021-12-02"};
    assert_int_equal(clc_storage_sas_account(c, &acc, &t, NULL), CLC_OK);
    assert_string_equal(clc_secret_reveal(t),
                        "sv=2021-12-02&ss=q&srt=sco&sp=rwdlacup&st=2023-12-31T00%3A00%3A00Z"
                        "&se=2024-01-01T00%3A00%3A00Z"
                        "&sig=4C4eoFJ6qrat2wejjm7WMdiP%2BZVRSW7iIF2OfNxGz1w%3D");
    clc_secret_free(t);

    struct clc_storage_sas_opts qs = {.permissions = "raup",
                                      .expiry = 1704067200,
                                      .protocol = "https,http",
                                      .version = "2021-12-02"};
    assert_int_equal(clc_storage_sas_queue(c, "certlc", &qs, &t, NULL), CLC_OK);
    assert_string_equal(clc_secret_reveal(t),
                        "sv=2021-12-02&se=2024-01-01T00%3A00%3A00Z&sp=raup&spr=https%2Chttp"
                        "&sig=jbRkaqW9v6QbSUC%2BHbal%2BCRbsBXqUp8S5wjwomm2C2g%3D");
    clc_secret_free(t);

    /* Refusals: no expiry, no services, a field that would break the query. */
    struct clc_errinfo ei = {0};
    struct clc_storage_sas_opts bad = qs;
    bad.expiry = 0;
    assert_int_equal(clc_storage_sas_queue(c, "certlc", &bad, &t, &ei), CLC_ERR_INVALID);
    assert_null(t);
    bad = qs;
    bad.permissions = "r&sig=x";
    assert_int_equal(clc_storage_sas_queue(c, "certlc", &bad, &t, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_storage_sas_account(c, &qs, &t, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "services"));
    clc_storage_cred_free(c);
}

static void credential_refusals(void **state)
{
    (void)state;
    struct clc_secret *k = NULL, *sas = NULL;
    struct clc_storage_cred *c = NULL;
    struct clc_errinfo ei = {0};

    assert_int_equal(clc_secret_new("not base64!", 11, &k), CLC_OK);
    assert_int_equal(clc_storage_cred_shared_key("acct", k, &c, &ei), CLC_ERR_INVALID);
    assert_null(c);
    assert_null(strstr(ei.msg, "not base64!")); /* the key never appears */
    clc_secret_free(k);
    assert_int_equal(clc_secret_new(DEV_KEY, strlen(DEV_KEY), &k), CLC_OK);
    assert_int_equal(clc_storage_cred_shared_key("acct/../x", k, &c, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_storage_cred_shared_key(NULL, k, &c, &ei), CLC_ERR_INVALID);
    clc_secret_free(k);

    assert_int_equal(clc_secret_new("sv=2021-12-02&se=x", 18, &sas), CLC_OK);
    assert_int_equal(clc_storage_cred_sas(sas, &c, &ei), CLC_ERR_INVALID);
    clc_secret_free(sas);
    assert_int_equal(clc_secret_new("?sv=1&sig=a b", 13, &sas), CLC_OK);
    assert_int_equal(clc_storage_cred_sas(sas, &c, &ei), CLC_ERR_INVALID);
    clc_secret_free(sas);
    assert_int_equal(clc_secret_new("?sv=1&sig=abc", 13, &sas), CLC_OK);
    assert_int_equal(clc_storage_cred_sas(sas, &c, &ei), CLC_OK);
    assert_int_equal(clc_storage_cred_kind(c), CLC_STORAGE_SAS);
    assert_string_equal(clc_secret_reveal(clc_storage_cred_sas_token(c)), "sv=1&sig=abc");
    assert_null(clc_storage_cred_account(c));
    clc_storage_cred_free(c);
    clc_secret_free(sas);
    assert_int_equal(clc_storage_cred_bearer(NULL, NULL, &c, &ei), CLC_ERR_INVALID);
}

static void sts_refusals(void **state)
{
    (void)state;
    struct clc_buf b;
    struct clc_errinfo ei = {0};
    const char *bad_hdr[] = {"x-ms-version 2021", NULL};
    struct clc_storage_sign_input in = {.method = "GET", .path = "/q", .headers = bad_hdr};
    clc_buf_init(&b, 4096);
    assert_int_equal(clc_storage_string_to_sign("acct", &in, &b, &ei), CLC_ERR_INVALID);
    in.headers = NULL;
    in.path = "q";
    clc_buf_reset(&b);
    assert_int_equal(clc_storage_string_to_sign("acct", &in, &b, &ei), CLC_ERR_INVALID);
    in.path = "/q";
    struct clc_storage_param q[] = {{"", "x"}};
    in.query = q;
    in.nquery = 1;
    clc_buf_reset(&b);
    assert_int_equal(clc_storage_string_to_sign("acct", &in, &b, &ei), CLC_ERR_INVALID);
    clc_buf_cleanup(&b);
}

/* The XML reader the clients parse answers with. */
static void xml_reader(void **state)
{
    (void)state;
    static const char doc[] =
        "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
        "<!-- c --><QueueMessagesList>\n  <QueueMessage>\n    <MessageId>a-1</MessageId>\n"
        "    <MessageText>x &lt;&amp;&gt; &#65;&#x42; "
        "&quot;q&apos;\r\nz<![CDATA[<raw>]]></MessageText>\n"
        "  </QueueMessage><QueueMessage a='1' b=\"2\"><MessageId>b</MessageId></QueueMessage>"
        "<Empty/></QueueMessagesList>\n";
    struct clc_xml *x = NULL;
    assert_int_equal(clc_xml_parse(doc, sizeof doc - 1, 100, &x, NULL), CLC_OK);
    const struct clc_xml_node *root = clc_xml_root(x);
    assert_string_equal(root->name, "QueueMessagesList");
    const struct clc_xml_node *m = clc_xml_child(x, root, "QueueMessage");
    assert_string_equal(clc_xml_child_text(x, m, "MessageId"), "a-1");
    assert_string_equal(clc_xml_child_text(x, m, "MessageText"), "x <&> AB \"q'\nz<raw>");
    m = clc_xml_next(x, m);
    assert_string_equal(clc_xml_child_text(x, m, "MessageId"), "b");
    assert_null(clc_xml_next(x, m));
    assert_string_equal(clc_xml_child_text(x, root, "Empty"), "");
    assert_null(clc_xml_child_text(x, root, "Missing"));
    clc_xml_free(x);

    static const char *const bad[] = {
        "",
        "text",
        "<a>",
        "<a></b>",
        "<a>&unknown;</a>",
        "<a>&#0;</a>",
        "<a>&#x110000;</a>",
        "<a b=c></a>",
        "<a b=\"<\"></a>",
        "<a></a><b/>",
        "<a></a>trailing",
        "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
        "<a>\x01</a>",
        "<a><!-- unterminated </a>",
        "<a><![CDATA[x</a>",
        "<1a/>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct clc_errinfo ei = {0};
        x = NULL;
        assert_int_equal(clc_xml_parse(bad[i], strlen(bad[i]), 100, &x, &ei), CLC_ERR_PARSE);
        assert_null(x);
        assert_non_null(strstr(ei.msg, "xml:"));
    }
    /* Bounds: depth and node count. */
    char deep[200] = "";
    for (int i = 0; i < 20; i++)
        strcat(deep, "<a>");
    for (int i = 0; i < 20; i++)
        strcat(deep, "</a>");
    assert_int_equal(clc_xml_parse(deep, strlen(deep), 100, &x, NULL), CLC_ERR_LIMIT);
    assert_int_equal(clc_xml_parse("<a><b/><b/><b/></a>", 19, 3, &x, NULL), CLC_ERR_LIMIT);
}

static void xml_escape(void **state)
{
    (void)state;
    struct clc_buf b;
    struct clc_errinfo ei = {0};
    clc_buf_init(&b, 1024);
    assert_int_equal(clc_xml_escape(&b, "a<b>&\"'\r\n\t\xc3\xa9", 12, NULL), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "a&lt;b&gt;&amp;\"'&#xD;\n\t\xc3\xa9");
    /* Round trip through the reader keeps CR. */
    struct clc_buf doc;
    clc_buf_init(&doc, 1024);
    clc_buf_appendf(&doc, "<t>%s</t>", clc_buf_str(&b));
    struct clc_xml *x = NULL;
    assert_int_equal(clc_xml_parse(doc.data, doc.len, 4, &x, NULL), CLC_OK);
    assert_string_equal(clc_xml_root(x)->text, "a<b>&\"'\r\n\t\xc3\xa9");
    clc_xml_free(x);
    clc_buf_cleanup(&doc);
    clc_buf_reset(&b);
    assert_int_equal(clc_xml_escape(&b, "\x01", 1, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "base64"));
    assert_int_equal(clc_xml_escape(&b, "\xc3", 1, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_xml_escape(&b, "\xed\xa0\x80", 3, &ei), CLC_ERR_INVALID); /* surrogate */
    assert_int_equal(clc_xml_escape(&b, "\xc0\xaf", 2, &ei), CLC_ERR_INVALID);     /* overlong */
    /* Plain text goes out a run at a time: the position of a bad byte after
     * a run, DEL (allowed, not plain) and the text around it are kept. */
    assert_int_equal(clc_xml_escape(&b, "abc\x01", 4, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "at byte 3"));
    clc_buf_reset(&b);
    assert_int_equal(clc_xml_escape(&b, "xy\x7fz<", 5, NULL), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "xy\x7fz&lt;");
    clc_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sts_reference_example),
        cmocka_unit_test(sts_path_style),
        cmocka_unit_test(sts_repeated_query_and_date),
        cmocka_unit_test(signature_vectors),
        cmocka_unit_test(sas_vectors),
        cmocka_unit_test(credential_refusals),
        cmocka_unit_test(sts_refusals),
        cmocka_unit_test(xml_reader),
        cmocka_unit_test(xml_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
