/* The Studio (DESIGN.md section 11): https://<node>/studio/, the node's own HTML, CSS and
 * JavaScript (node/studio/, embedded at build time), which use the public API only. The files
 * are no secret: they are served to anyone, and the page itself finds out who the browser is
 * (GET /certificates/whoami) and what it may see. */
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "node/resource.h"
#include "node/studio.h"

/* The Studio changes with the node that serves it: a browser asks again each time. */
#define STUDIO_HEADERS "Cache-Control: no-cache\r\n"

static const struct studio_asset *asset_of(const char *path)
{
    for (size_t i = 0; i < studio_n_assets; i++)
        if (strcmp(studio_assets[i].path, path) == 0)
            return &studio_assets[i];
    return NULL;
}

static void serve(struct http_request *req, const char *path)
{
    const struct studio_asset *f = asset_of(path);
    if (f == NULL) {
        http_respond_error(req, 404, "NotFound", "The Studio has no file %s", req->path);
        return;
    }
    http_respond(req, 200, f->content_type, f->data, f->len, STUDIO_HEADERS);
}

static void h_root(struct api *api, struct http_request *req, struct node_auth *a)
{
    http_respond(req, 302, "text/plain; charset=utf-8", "/studio/\n", 9, "Location: /studio/\r\n");
    (void)api, (void)a;
}

static void h_index(struct api *api, struct http_request *req, struct node_auth *a)
{
    serve(req, "/studio/index.html");
    (void)api, (void)a;
}

static void h_file(struct api *api, struct http_request *req, struct node_auth *a)
{
    serve(req, req->path);
    (void)api, (void)a;
}

static const struct api_route routes[] = {
    {HTTP_GET, "/", NEED_NONE, h_root, true, API_NO_BODY},
    {HTTP_GET, "/studio", NEED_NONE, h_index, true, API_NO_BODY},
    {HTTP_GET, "/studio/*", NEED_NONE, h_file, true, API_NO_BODY},
};
const struct api_routes api_studio_routes = {routes, sizeof routes / sizeof routes[0]};
