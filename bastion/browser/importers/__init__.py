"""Import Selenium IDE projects and Ghost Inspector exports; export tests as Playwright scripts."""

from bastion.browser.importers.common import (
    ImportFormatError,
    ImportResult,
    Unmapped,
    import_data,
    import_file,
    slug,
)

__all__ = ["ImportFormatError", "ImportResult", "Unmapped", "import_data", "import_file", "slug"]
