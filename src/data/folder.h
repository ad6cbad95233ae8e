/* A folder of images as a data set: PNG and JPEG files, labelled by subfolder
 * (DIR/CLASS/NAME.png, the classes sorted by name) or unlabelled (the files directly in DIR),
 * decoded, cropped and resized to one square size and turned into one colour mode.
 *
 * What a folder may hold, and what is done with it:
 *   - files are taken in byte order of their names (within a class), classes in byte order of
 *     their folder names; names starting with '.' are ignored, and so are files whose name
 *     does not end in .png, .jpg or .jpeg (any case; their count is stated once) and folders
 *     inside class folders;
 *   - a file's content decides its format (PNG or JPEG); one with an image name that is
 *     neither, an empty, truncated, damaged or unreadable file, a class folder without images,
 *     image files beside class folders, more than GEOMETRY_MAX_CLASSES classes or a class
 *     name of GEOMETRY_NAME_LEN bytes or more: each is an error naming the file or folder;
 *   - a class folder with a single image is allowed, with a warning naming it;
 *   - images of another size are cropped to the centred square (a non-square image loses the
 *     ends of its longer side) and resized with stb_image_resize's filters (Mitchell when
 *     shrinking, Catmull-Rom when enlarging, on the stored values), not at all when already
 *     of the target size, so a folder of 28x28 grey PNGs gives back their exact bytes;
 *   - colour images in a grey set become grey by luma (0.299 R + 0.587 G + 0.114 B), grey
 *     images in a colour set get three equal channels, transparency is composited onto black
 *     and 16-bit PNGs are rounded to 8 bits; each kind of conversion is stated once. */
#ifndef DDPM_FOLDER_H
#define DDPM_FOLDER_H

#include "core/progress.h"
#include "data/imagefile.h"
#include "data/imageset.h"

/* The target geometry; 0 means "from the images". */
typedef struct {
    int size;     /* S: square side, a multiple of 4 from 8 to GEOMETRY_MAX_SIDE. 0: the first
                   * image's shorter side rounded down to a multiple of 4, within 8..64 (64
                   * because the model's cost grows with S^2: ask for more with a size) */
    int channels; /* 1 or 3. 0: 3 when any image is in colour, else 1 */
} FolderOptions;

typedef struct {
    char *path;           /* DIR/[class/]name, the file's path */
    const char *rel;      /* [class/]name: points into path, after "DIR/" */
    int label;            /* 0..classes-1, or -1 when unlabelled */
    long long bytes;      /* size in bytes */
    long long mtime_ns;   /* last modification, ns since the epoch */
} FolderFile;

/* What a folder holds: its image files and classes, without reading any image. */
typedef struct {
    int classes;                                                /* 0: unlabelled */
    char class_names[GEOMETRY_MAX_CLASSES][GEOMETRY_NAME_LEN]; /* sorted */
    int n;                                                      /* image files */
    FolderFile *files;     /* (n) class by class, each class's files sorted by name */
    int skipped;           /* files ignored for their name */
} FolderListing;

/* Check an options' values (size multiple of 4 in range, channels 0, 1 or 3). Returns 0, or
 * -1 with err_msg(). */
int folder_options_check(const FolderOptions *opt);

/* List dir (see above for the rules); warnings and the skipped files' count are log lines on
 * p. Returns 0, or -1 with err_msg() naming the file or folder. */
int folder_list(FolderListing *out, const char *dir, const Progress *p);
void folder_listing_free(FolderListing *l);

/* Decode every file of l into out (geometry from opt and the images; classes from l),
 * with counts of the stage "decoding" and one line per kind of conversion on p. On any bad
 * file: -1 with err_msg() naming it, and out empty. */
int folder_decode(ImageSet *out, const FolderListing *l, const FolderOptions *opt,
                  const Progress *p);

/* One decoded image as folder_decode places it: its centred square resized to S x S (copied
 * when already that size) into slot (S, S, im->channels) interleaved. Returns 0, or -1 with
 * err_msg() naming name. (The fuzzer's way through the loader.) */
int folder_place(uint8_t *slot, const DecodedImage *im, int S, const char *name);
/* The size FolderOptions.size 0 chooses for a first image im. */
int folder_auto_size(const DecodedImage *im);

/* folder_list and folder_decode. */
int folder_load(ImageSet *out, const char *dir, const FolderOptions *opt, const Progress *p);

#endif
