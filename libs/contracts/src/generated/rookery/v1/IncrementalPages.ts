// Original file: proto/rookery/v1/records.proto

import type { Long } from '@grpc/proto-loader';

export interface IncrementalPages {
  'pagesRead'?: (number | string | Long);
  'pagesStored'?: (number | string | Long);
  'wholeFiles'?: (number | string | Long);
  'removed'?: (number | string | Long);
  'pagesSkipped'?: (number | string | Long);
  '_pagesSkipped'?: "pagesSkipped";
}

export interface IncrementalPages__Output {
  'pagesRead': (number);
  'pagesStored': (number);
  'wholeFiles': (number);
  'removed': (number);
  'pagesSkipped'?: (number);
  '_pagesSkipped'?: "pagesSkipped";
}
