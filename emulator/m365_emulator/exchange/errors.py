"""Exchange's errors as cmdlets raise them: ``ErrId|ExceptionType|Text``, and how the REST layer wraps them."""

from __future__ import annotations

from typing import Any

# Error ids as Exchange prints them before the exception type. Ex6F9304 (object not found) is the one seen in
# public reports; the others are placeholders of the same shape so that clients never depend on their value.
ERR_NOT_FOUND = "Ex6F9304"
ERR_ALREADY_EXISTS = "ExB9E1C4"
ERR_INVALID = "Ex2A7D11"

NOT_FOUND_TYPE = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
ALREADY_EXISTS_TYPE = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"
INVALID_ARGUMENT_TYPE = "Microsoft.Exchange.Configuration.Tasks.TaskArgumentException"
BINDING_TYPE = "System.Management.Automation.ParameterBindingException"
TRANSFORMATION_TYPE = "System.Management.Automation.ParameterBindingArgumentTransformationException"
VALIDATION_TYPE = "System.Management.Automation.ParameterBindingValidationException"
COMMAND_NOT_FOUND_TYPE = "System.Management.Automation.CommandNotFoundException"
# What the REST layer wraps a parameter binding failure in (an unknown or ambiguous parameter).
PARAMETER_SET_TYPE = "Microsoft.Exchange.Admin.OData.Core.AmbiguousParameterSetException"
CMDLET_EXECUTION_TYPE = "Microsoft.Exchange.Management.PSDirectInvoke.DirectInvokeCmdletExecutionException"
# What a captured not-found (HTTP 404) is wrapped in: the OData layer's exception around the cmdlet execution one.
ODATA_SERVICE_TYPE = "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"


class CmdletError(Exception):
    """A cmdlet failure, answered as Exchange's error envelope with ``ErrId|ExceptionType|Text`` details."""

    def __init__(self, exception_type: str, text: str, error_id: str = "", code: str = "InternalServerError",
                 wrapper_type: str = CMDLET_EXECUTION_TYPE, status: int = 400, detail_code: str = "Context",
                 internal_type: str | None = None):
        super().__init__(text)
        self.exception_type = exception_type
        self.text = text
        self.error_id = error_id
        self.code = code
        self.wrapper_type = wrapper_type
        self.status = status
        self.detail_code = detail_code
        # The exception inside the wrapper; None: the cmdlet's own exception, with its text.
        self.internal_type = internal_type


def binding_error(text: str, exception_type: str = BINDING_TYPE) -> CmdletError:
    return CmdletError(exception_type, text, code="BadRequest", wrapper_type=PARAMETER_SET_TYPE)


def not_found(identity: Any, server: str) -> CmdletError:
    """The captured shape: HTTP 404, code NotFound, details[0].code Client, the cmdlet exception only in details."""
    return CmdletError(NOT_FOUND_TYPE, f"The operation couldn't be performed because object '{identity}' couldn't be "
                                       f"found on '{server}'.", ERR_NOT_FOUND, code="NotFound",
                       wrapper_type=ODATA_SERVICE_TYPE, status=404, detail_code="Client",
                       internal_type=CMDLET_EXECUTION_TYPE)
