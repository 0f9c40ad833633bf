# ruff: noqa
from services.anomaly.remote_write.proto import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LazyTimeSeries(_message.Message):
    __slots__ = ("labels", "samples")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedScalarFieldContainer[bytes]
    samples: _containers.RepeatedCompositeFieldContainer[_types_pb2.Sample]
    def __init__(
        self,
        labels: _Optional[_Iterable[bytes]] = ...,
        samples: _Optional[_Iterable[_Union[_types_pb2.Sample, _Mapping]]] = ...,
    ) -> None: ...

class LazyWriteRequest(_message.Message):
    __slots__ = ("timeseries",)
    TIMESERIES_FIELD_NUMBER: _ClassVar[int]
    timeseries: _containers.RepeatedCompositeFieldContainer[LazyTimeSeries]
    def __init__(
        self, timeseries: _Optional[_Iterable[_Union[LazyTimeSeries, _Mapping]]] = ...
    ) -> None: ...
