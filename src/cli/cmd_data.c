/* ddpm data fetch: download and verify the official MNIST files. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "core/common.h"
#include "data/mnist.h"

static const char *HEAD =
    "Usage: ddpm data fetch [--data DIR]\n"
    "\n"
    "Downloads the four official MNIST .gz files over HTTPS into DIR (default $DDPM_DATA or\n"
    "./data/mnist) and verifies their sha256 checksums; files already there and correct are kept.";

int cmd_data(int argc, char **argv) {
    const char *data = NULL;
    Opt opts[] = {{"data", OPT_STR, &data, "target directory", 0, -1, 0}};
    if (argc < 3 || strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        args_usage(argc < 3 ? stderr : stdout, HEAD, opts, 1);
        return argc < 3 ? 2 : 0;
    }
    if (strcmp(argv[2], "fetch") != 0) {
        fprintf(stderr, "ddpm data: unknown action '%s' (expected fetch)\n", argv[2]);
        return 2;
    }
    int r = args_parse(argc, argv, 3, opts, 1, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("data fetch", 2);
    const char *dir = mnist_data_dir(data);
    CliOutput co;
    const Progress out = cli_output(&co);
    if (mnist_fetch(dir, &out) != 0) return cli_fail("data fetch", 1);
    printf("MNIST is in %s (checksums verified)\n", dir);
    return 0;
}
