"""The browser-test format: typed steps, selectors, variables and modules."""

from bastion.browser.spec.model import ACTIONS, BrowserTest, Selector, Step, Visual
from bastion.browser.spec.modules import (
    DirectoryModules,
    ModuleNotFound,
    ModuleResolver,
    check_modules,
    no_modules,
)
from bastion.browser.spec.parse import (
    Problem,
    SpecError,
    browser_test_to_dict,
    dump_test,
    load_test,
    load_test_file,
)
from bastion.browser.spec.selectors import SelectorError, parse_selector
from bastion.browser.spec.variables import UnknownVariable, Variables

__all__ = [
    "ACTIONS",
    "BrowserTest",
    "DirectoryModules",
    "ModuleNotFound",
    "ModuleResolver",
    "Problem",
    "Selector",
    "SelectorError",
    "SpecError",
    "Step",
    "UnknownVariable",
    "Variables",
    "Visual",
    "browser_test_to_dict",
    "check_modules",
    "dump_test",
    "load_test",
    "load_test_file",
    "no_modules",
    "parse_selector",
]
