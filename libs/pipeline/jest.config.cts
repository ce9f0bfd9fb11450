module.exports = {
  displayName: 'pipeline',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/libs/pipeline',
};
