// The one runtime function the Embedded Swift standard library leaves to the platform and the
// launcher reaches (Double(String), for TOML floats in metadata.toml and exec.d output). Same
// contract as the Swift runtime's stub: parse at `nptr` in the C locale, store the value,
// return where parsing stopped; Swift checks the whole string was used. The launcher never
// calls setlocale, so strtod's locale is "C".
#include <errno.h>
#include <stdlib.h>

const char *_swift_stdlib_strtod_clocale(const char *nptr, double *outResult) {
    char *end;
    errno = 0;
    *outResult = strtod(nptr, &end);
    return end;
}
