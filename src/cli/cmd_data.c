/* ddpm data fetch: download and verify the official MNIST files; ddpm data export: write them
 * out as PNG class folders (src/app/data_export.h). */
#include <stdio.h>
#include <string.h>

#include "app/data_export.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "core/common.h"
#include "data/mnist.h"

static const char *HEAD =
    "Usage: ddpm data fetch [--data DIR]\n"
    "       ddpm data export --format png [--data DIR] [--limit N] [--pad S] [--tint] OUT\n"
    "\n"
    "fetch downloads the four official MNIST .gz files over HTTPS into DIR (default $DDPM_DATA\n"
    "or ./data/mnist) and verifies their sha256 checksums; files already there and correct are\n"
    "kept.\n"
    "export writes the MNIST (or Fashion-MNIST) IDX files of DIR as PNG class folders, the\n"
    "layout a folder of your own images takes: OUT/train/D/NNNNN.png (60000) and\n"
    "OUT/test/D/NNNNN.png (10000), D the label 0-9 and NNNNN the image's index in its split;\n"
    "each PNG holds the 28x28 grey image's bytes as they are (or padded and tinted, see\n"
    "ddpm data export --help). Train on OUT/train.";

static const char *HEAD_EXPORT =
    "Usage: ddpm data export --format png [--data DIR] [--limit N] [--pad S] [--tint] OUT\n"
    "\n"
    "Writes the MNIST (or Fashion-MNIST) IDX files of DIR (default $DDPM_DATA or ./data/mnist)\n"
    "as PNG class folders, the layout a folder of your own images takes:\n"
    "OUT/train/D/NNNNN.png (60000 images) and OUT/test/D/NNNNN.png (10000), D the label 0-9\n"
    "and NNNNN the image's index in its split (a class folder read in name order keeps the IDX\n"
    "order); each PNG holds the 28x28 grey image's bytes as they are. Train on OUT/train.\n"
    "--pad S centres each digit in an S x S image (zeros around); --tint writes RGB, each\n"
    "digit in its class's colour (hue 36 degrees x digit, one channel at full intensity in\n"
    "every colour, so the maximum over channels gives the grey digit back): a colour data set\n"
    "of a known answer, e.g. --pad 32 --tint for a 32x32x3 run.";

/* Whether arg (--name or --name=value) names a flag of opts: one that takes no value. */
static int is_flag(const char *arg, const Opt *opts, int n) {
    for (int k = 0; k < n; k++)
        if (opts[k].type == OPT_FLAG && strcmp(arg + 2, opts[k].name) == 0) return 1;
    return strcmp(arg, "--help") == 0;
}

/* The one argument that is not an option or an option's value, removed from argv; NULL when
 * there is none or more than one. */
static const char *take_positional(int *argc, char **argv, int first, const Opt *opts, int n) {
    int at = -1, count = 0;
    for (int i = first; i < *argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
            if (!strchr(argv[i], '=') && !is_flag(argv[i], opts, n)) i++;
            continue;
        }
        if (strcmp(argv[i], "-h") == 0) continue;
        at = i;
        count++;
    }
    if (count != 1) return NULL;
    const char *arg = argv[at];
    for (int i = at; i + 1 < *argc; i++) argv[i] = argv[i + 1];
    (*argc)--;
    return arg;
}

static int data_export(int argc, char **argv) {
    const char *data = NULL, *format = NULL;
    DataExportOptions eo = {0, 0, 0};
    Opt opts[] = {{"format", OPT_STR, &format, "the images' format: png", 0, -1, 0},
                  {"data", OPT_STR, &data, "the IDX files (default $DDPM_DATA or ./data/mnist)",
                   0, -1, 0},
                  {"limit", OPT_INT, &eo.limit, "only the first N images of each split (0: all)",
                   0, 2147483647, 0},
                  {"pad", OPT_INT, &eo.pad, "centre each digit in an S x S image (S from 28)", 28,
                   1024, 0},
                  {"tint", OPT_FLAG, &eo.tint, "RGB, each digit in its class's colour", 0, 0, 0}};
    const int no = (int)(sizeof opts / sizeof opts[0]);
    const char *out_dir = take_positional(&argc, argv, 3, opts, no);
    int r = args_parse(argc, argv, 3, opts, no, HEAD_EXPORT);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("data export", 2);
    if (!out_dir) {
        fprintf(stderr, "ddpm data export: give one output folder OUT (see --help)\n");
        return 2;
    }
    if (!format || strcmp(format, "png") != 0) {
        fprintf(stderr, "ddpm data export: --format png is the format written (got %s)\n",
                format ? format : "none");
        return 2;
    }
    CliOutput co;
    const Progress out = cli_output(&co);
    if (data_export_png(out_dir, mnist_data_dir(data), &eo, &out) != 0)
        return cli_fail("data export", 1);
    printf("PNG class folders in %s/train and %s/test\n", out_dir, out_dir);
    return 0;
}

int cmd_data(int argc, char **argv) {
    const char *data = NULL;
    Opt opts[] = {{"data", OPT_STR, &data, "target directory", 0, -1, 0}};
    if (argc < 3 || strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        args_usage(argc < 3 ? stderr : stdout, HEAD, opts, 1);
        return argc < 3 ? 2 : 0;
    }
    if (strcmp(argv[2], "export") == 0) return data_export(argc, argv);
    if (strcmp(argv[2], "fetch") != 0) {
        fprintf(stderr, "ddpm data: unknown action '%s' (expected fetch or export)\n", argv[2]);
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
