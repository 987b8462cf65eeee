"""The one name comparison of SPEC §6: BU names against folder names and the blacklist.

Two names are equal when their keys are equal. The key is the name in Unicode NFC,
without leading or trailing white space (`str.strip`: every Unicode space, the no-break
space U+00A0 and the ideographic space U+3000 included), case-folded (`str.casefold`:
"ß" equals "SS", not locale-aware, so the Turkish dotted "İ" equals "i̇", not "i"), and
NFC again (case folding may leave a decomposed sequence). Inner white space is kept.

Used by attribution (folder names), `bds units` and the configuration's checks (the
blacklist, two BU names that would be one); nothing else compares names.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def name_key(name: str | None) -> str:
    """The comparison key of one name; a null name has the key '' (matches no BU)."""
    if name is None:
        return ""
    folded = unicodedata.normalize("NFC", name).strip().casefold()
    return unicodedata.normalize("NFC", folded)


def name_keys(names: pd.Series) -> pd.Series:
    """`name_key` of every value of a column (nulls → ''), same index.

    Computed once per distinct name (a folder table repeats few), then spread back with
    whole-array indexing: no Python loop over the rows.
    """
    import numpy as np
    import pandas as pd

    codes, uniq = pd.factorize(names, use_na_sentinel=True)
    keys = np.array([name_key(str(u)) for u in uniq] + [""], dtype=object)
    return pd.Series(keys[codes], index=names.index, dtype=object)
